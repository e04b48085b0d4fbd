#!/bin/sh
# The demo: the passthrough flow on the lab, step by step. Each step is a
# function named in DEMO_STEPS; later issues add steps (e.g. boot a guest).
# Exits non-zero if a step's command fails, so the demo doubles as a test.
. /lab/lib.sh
EDU=$(lab_find_dev $LAB_ID_EDU 1)
G=$(lab_group $EDU)

say() { echo "   $*"; }
drv() { d=$(lab_driver $1); echo "${d:-(none)}"; }
vfio() { ls /dev/vfio 2>/dev/null | tr '\n' ' '; }

step_check() {
  lab_step "1. Is this host ready for passthrough?"
  lab_run devpass check
  lab_rc "devpass check: no FAIL" 0
}
step_list() {
  lab_step "2. The PCI devices, their IOMMU groups and drivers"
  lab_run devpass list
  lab_rc "devpass list" 0
}
step_hide() {
  lab_step "3. Hide the edu device $EDU from the host"
  say "before: driver=$(drv $EDU)  /dev/vfio: $(vfio)"
  lab_run devpass hide $EDU
  lab_rc "devpass hide" 0
  say "after:  driver=$(drv $EDU)  /dev/vfio: $(vfio)"
  lab_eq "$EDU is on vfio-pci" vfio-pci "$(lab_driver $EDU)"
  lab_exists "/dev/vfio/$G is there for a guest" /dev/vfio/$G
}
step_status() {
  lab_step "4. What devpass has hidden"
  lab_run devpass status
  lab_rc "devpass status" 0
}
step_show() {
  lab_step "5. The hidden device in detail"
  lab_run devpass show $EDU
  lab_rc "devpass show" 0
}
step_unhide() {
  lab_step "6. Give it back to the host"
  lab_run devpass unhide $EDU
  lab_rc "devpass unhide" 0
  say "after:  driver=$(drv $EDU)  driver_override=$(lab_override $EDU)  /dev/vfio: $(vfio)"
  lab_absent "/dev/vfio/$G is gone" /dev/vfio/$G
}

DEMO_STEPS=${DEMO_STEPS:-"check list hide status show unhide"}
for s in $DEMO_STEPS; do "step_$s"; done
lab_done
