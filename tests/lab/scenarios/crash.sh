#!/bin/sh
# Crash safety on the real kernel: devpass SIGKILLs itself at every crash
# point of hide and unhide (DEVPASS_CRASH_AT=<op>:<point>); the next devpass
# command (status) repairs: an interrupted hide is rolled back (original
# driver, driver_override "(null)"), an interrupted unhide is completed.
# Uses an e1000e, which has a host driver to go back to.
. /lab/lib.sh
NIC=$(lab_find_dev $LAB_ID_E1000E 2)
G=$(lab_group $NIC)
HIDE_POINTS="after-journal after-override after-unbind after-probe after-verify"
UNHIDE_POINTS="after-journal after-unbind after-override-clear after-rebind"

# The state the kernel must be in right after the kill at each point (the
# crash point is real: the steps before it happened, the ones after did not).
crashed_state() {  # crashed_state OP:POINT
  case $1 in
    hide:after-journal)          want="e1000e (null)" ;;
    hide:after-override)         want="e1000e vfio-pci" ;;
    hide:after-unbind)           want="- vfio-pci" ;;
    hide:after-probe|hide:after-verify) want="vfio-pci vfio-pci" ;;
    unhide:after-journal)        want="vfio-pci vfio-pci" ;;
    unhide:after-unbind)         want="- vfio-pci" ;;
    unhide:after-override-clear) want="- (null)" ;;
    unhide:after-rebind)         want="e1000e (null)" ;;
  esac
  d=$(lab_driver $NIC)
  lab_eq "$1: killed at the right step (driver, driver_override)" "$want" "${d:--} $(lab_override $NIC)"
}

host_state() {  # host_state WHAT: the NIC is back on e1000e, override clear
  lab_eq "$1: driver is e1000e" e1000e "$(lab_driver $NIC)"
  lab_eq "$1: driver_override is (null)" "(null)" "$(lab_override $NIC)"
  lab_ne "$1: the NIC has an interface" "" "$(lab_netifs $NIC)"
  lab_absent "$1: no /dev/vfio/$G" /dev/vfio/$G
}

lab_step "start: $(lab_state $NIC)"
host_state "start"

for p in $HIDE_POINTS; do
  lab_step "hide, killed at $p"
  lab_run env DEVPASS_CRASH_AT=hide:$p devpass hide $NIC
  lab_rc "hide:$p: devpass was killed (137)" 137
  echo "  after the crash: $(lab_state $NIC)"
  crashed_state hide:$p
  lab_run devpass status
  lab_rc "hide:$p: status after the crash exits 0" 0
  host_state "hide:$p, after repair"
  lab_run devpass status --json
  lab_check "hide:$p: status --json is valid JSON" jq -e . "$LAB_OUT"
done

for p in $UNHIDE_POINTS; do
  lab_step "unhide, killed at $p"
  lab_run devpass hide $NIC
  lab_rc "unhide:$p: hide first exits 0" 0
  lab_eq "unhide:$p: hidden: driver is vfio-pci" vfio-pci "$(lab_driver $NIC)"
  lab_run env DEVPASS_CRASH_AT=unhide:$p devpass unhide $NIC
  lab_rc "unhide:$p: devpass was killed (137)" 137
  echo "  after the crash: $(lab_state $NIC)"
  crashed_state unhide:$p
  lab_run devpass status
  lab_rc "unhide:$p: status after the crash exits 0" 0
  host_state "unhide:$p, after repair"
done

lab_step "a normal hide and unhide still work after all that"
lab_run devpass hide $NIC
lab_rc "hide exits 0" 0
lab_eq "driver is vfio-pci" vfio-pci "$(lab_driver $NIC)"
lab_run devpass unhide $NIC
lab_rc "unhide exits 0" 0
host_state "end"
lab_done
