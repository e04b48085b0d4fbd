#!/bin/sh
# hide / unhide on the real kernel: an edu (no host driver) to vfio-pci and
# back; an e1000e NIC (its interface goes away and comes back); pci-stub.
. /lab/lib.sh
EDU=$(lab_find_dev $LAB_ID_EDU 1)
EDU2=$(lab_find_dev $LAB_ID_EDU 2)
NIC=$(lab_find_dev $LAB_ID_E1000E 2)
G=$(lab_group $EDU)
G2=$(lab_group $EDU2)
GN=$(lab_group $NIC)

lab_step "before: vfio-pci is not loaded, the edu has no driver"
lab_eq "vfio_pci module not loaded at boot" "" "$(grep '^vfio_pci ' /proc/modules)"
lab_eq "edu $EDU: no driver" "" "$(lab_driver $EDU)"
lab_state $EDU

lab_step "hide the edu $EDU (group $G)"
lab_run devpass hide $EDU
lab_rc "hide exits 0" 0
lab_eq "driver is vfio-pci" vfio-pci "$(lab_driver $EDU)"
lab_eq "driver_override is vfio-pci" vfio-pci "$(lab_override $EDU)"
lab_exists "/dev/vfio/$G exists" /dev/vfio/$G
lab_ne "devpass loaded vfio_pci" "" "$(grep '^vfio_pci ' /proc/modules)"
lab_run devpass status
lab_rc "status exits 0" 0
lab_out_has "status names the edu" "${EDU#0000:}"
lab_run devpass status --json
lab_check "status --json is valid JSON" jq -e . "$LAB_OUT"

lab_step "hiding it again changes nothing"
lab_run devpass hide $EDU
lab_rc "hide of a hidden device exits 0" 0
lab_eq "driver is still vfio-pci" vfio-pci "$(lab_driver $EDU)"

lab_step "unhide the edu $EDU"
lab_run devpass unhide $EDU
lab_rc "unhide exits 0" 0
lab_eq "no driver again (edu has no host driver)" "" "$(lab_driver $EDU)"
lab_eq "driver_override is (null)" "(null)" "$(lab_override $EDU)"
lab_absent "/dev/vfio/$G is gone" /dev/vfio/$G

IF=$(lab_netifs $NIC)
lab_step "hide the e1000e $NIC (group $GN, interface $IF)"
lab_ne "the NIC has an interface before" "" "$IF"
lab_run devpass hide $NIC
lab_rc "hide exits 0" 0
lab_eq "driver is vfio-pci" vfio-pci "$(lab_driver $NIC)"
lab_eq "driver_override is vfio-pci" vfio-pci "$(lab_override $NIC)"
lab_absent "interface $IF is gone" /sys/class/net/$IF
lab_eq "no interface on $NIC" "" "$(lab_netifs $NIC)"
lab_exists "/dev/vfio/$GN exists" /dev/vfio/$GN

lab_step "unhide the e1000e $NIC"
lab_run devpass unhide $NIC
lab_rc "unhide exits 0" 0
lab_eq "driver is e1000e again" e1000e "$(lab_driver $NIC)"
lab_eq "driver_override is (null)" "(null)" "$(lab_override $NIC)"
lab_ne "the NIC has an interface again" "" "$(lab_netifs $NIC)"
lab_absent "/dev/vfio/$GN is gone" /dev/vfio/$GN

lab_step "hide the edu $EDU2 with --driver pci-stub"
lab_eq "pci_stub module not loaded yet" "" "$(grep '^pci_stub ' /proc/modules)"
lab_run devpass hide --driver pci-stub $EDU2
lab_rc "hide --driver pci-stub exits 0" 0
lab_eq "driver is pci-stub" pci-stub "$(lab_driver $EDU2)"
lab_eq "driver_override is pci-stub" pci-stub "$(lab_override $EDU2)"
lab_absent "no /dev/vfio/$G2 (not a VFIO driver)" /dev/vfio/$G2
lab_run devpass unhide $EDU2
lab_rc "unhide exits 0" 0
lab_eq "no driver again" "" "$(lab_driver $EDU2)"
lab_eq "driver_override is (null)" "(null)" "$(lab_override $EDU2)"

lab_step "hide the e1000e $NIC with --driver pci-stub"
lab_run devpass hide --driver pci-stub $NIC
lab_rc "hide exits 0" 0
lab_eq "driver is pci-stub" pci-stub "$(lab_driver $NIC)"
lab_eq "no interface on $NIC" "" "$(lab_netifs $NIC)"
lab_run devpass unhide $NIC
lab_rc "unhide exits 0" 0
lab_eq "driver is e1000e again" e1000e "$(lab_driver $NIC)"
lab_eq "driver_override is (null)" "(null)" "$(lab_override $NIC)"
lab_ne "the NIC has an interface again" "" "$(lab_netifs $NIC)"
lab_done
