#!/bin/sh
# Persistence across reboots of the lab (run with --boots 3, one state disk):
#   boot 1: hide an edu and an e1000e with --persist
#   boot 2: both are on vfio-pci again (devpass restore ran at boot); unhide --persist
#   boot 3: both are back on their host drivers and stay there
. /lab/lib.sh
EDU=$(lab_find_dev $LAB_ID_EDU 1)
NIC=$(lab_find_dev $LAB_ID_E1000E 2)
G=$(lab_group $EDU)

lab_step "boot $LAB_BOOT of $LAB_BOOTS: devpass restore at boot exited $(cat /run/lab/restore.rc)"
lab_eq "devpass restore at boot exits 0" 0 "$(cat /run/lab/restore.rc)"
lab_state $EDU; lab_state $NIC

case $LAB_BOOT in
1)
  lab_eq "edu starts without a driver" "" "$(lab_driver $EDU)"
  lab_eq "e1000e starts on e1000e" e1000e "$(lab_driver $NIC)"
  lab_step "hide --persist both"
  lab_run devpass hide --persist $EDU $NIC
  lab_rc "hide --persist exits 0" 0
  lab_eq "edu on vfio-pci" vfio-pci "$(lab_driver $EDU)"
  lab_eq "e1000e on vfio-pci" vfio-pci "$(lab_driver $NIC)"
  lab_ne "something was written to /etc/devpass" "" "$(find /etc/devpass -type f)"
  find /etc/devpass /etc/udev /etc/systemd /etc/modprobe.d /var/lib/devpass -type f | sed 's/^/  file: /'
  ;;
2)
  lab_step "after the reboot: restored at boot"
  lab_eq "edu on vfio-pci" vfio-pci "$(lab_driver $EDU)"
  lab_eq "edu driver_override is vfio-pci" vfio-pci "$(lab_override $EDU)"
  lab_exists "/dev/vfio/$G exists" /dev/vfio/$G
  lab_eq "e1000e on vfio-pci" vfio-pci "$(lab_driver $NIC)"
  lab_eq "the e1000e has no interface" "" "$(lab_netifs $NIC)"
  lab_run devpass status
  lab_rc "status exits 0" 0
  lab_step "unhide --persist both"
  lab_run devpass unhide --persist $EDU $NIC
  lab_rc "unhide --persist exits 0" 0
  lab_eq "edu has no driver" "" "$(lab_driver $EDU)"
  lab_eq "e1000e on e1000e" e1000e "$(lab_driver $NIC)"
  ;;
*)
  lab_step "after the second reboot: the host drivers stay"
  lab_eq "edu has no driver" "" "$(lab_driver $EDU)"
  lab_eq "edu driver_override is (null)" "(null)" "$(lab_override $EDU)"
  lab_absent "no /dev/vfio/$G" /dev/vfio/$G
  lab_eq "e1000e on e1000e" e1000e "$(lab_driver $NIC)"
  lab_eq "e1000e driver_override is (null)" "(null)" "$(lab_override $NIC)"
  lab_ne "the e1000e has an interface" "" "$(lab_netifs $NIC)"
  lab_run devpass restore
  lab_rc "a second devpass restore exits 0" 0
  lab_eq "edu still has no driver" "" "$(lab_driver $EDU)"
  lab_eq "e1000e still on e1000e" e1000e "$(lab_driver $NIC)"
  ;;
esac
lab_done
