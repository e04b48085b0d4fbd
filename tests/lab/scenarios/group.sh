#!/bin/sh
# IOMMU group viability: the edu behind the PCIe-to-PCI bridge shares its
# group with an e1000 that the host drives. Hiding the edu alone is refused
# (naming the e1000) and changes nothing; --group hides both.
. /lab/lib.sh
EDU=$(lab_find_dev $LAB_ID_EDU 3)
E1000=$(lab_find_dev $LAB_ID_E1000 1)
G=$(lab_group $EDU)
IF=$(lab_netifs $E1000)

lab_step "the group $G: $(lab_group_members $EDU | tr '\n' ' ')"
lab_eq "the e1000 $E1000 is in the edu's group" "$G" "$(lab_group $E1000)"
lab_eq "the e1000 is driven by e1000" e1000 "$(lab_driver $E1000)"
lab_ne "the e1000 has an interface" "" "$IF"

lab_step "hide the edu $EDU alone: refused"
before=$(lab_snapshot)
lab_run devpass hide $EDU
lab_ne "hide exits non-zero" 0 "$LAB_RC"
lab_out_has "the refusal names the e1000 $E1000" "${E1000#0000:}"
lab_eq "nothing changed in sysfs" "$before" "$(lab_snapshot)"
lab_absent "no /dev/vfio/$G" /dev/vfio/$G

lab_step "hide --group $EDU: both on vfio-pci"
lab_run devpass hide --group $EDU
lab_rc "hide --group exits 0" 0
lab_eq "edu driver is vfio-pci" vfio-pci "$(lab_driver $EDU)"
lab_eq "e1000 driver is vfio-pci" vfio-pci "$(lab_driver $E1000)"
lab_eq "e1000 interface $IF is gone" "" "$(lab_netifs $E1000)"
lab_exists "/dev/vfio/$G exists" /dev/vfio/$G
for b in $(lab_group_members $EDU); do
  [ $b = $EDU ] || [ $b = $E1000 ] || lab_ne "bridge $b is not given to vfio-pci" vfio-pci "$(lab_driver $b)"
done
lab_run devpass status
lab_rc "status exits 0" 0

lab_step "unhide both: the e1000 is back on e1000"
lab_run devpass unhide $EDU $E1000
lab_rc "unhide exits 0" 0
lab_eq "e1000 driver is e1000 again" e1000 "$(lab_driver $E1000)"
lab_ne "e1000 has an interface again" "" "$(lab_netifs $E1000)"
lab_eq "edu has no driver again" "" "$(lab_driver $EDU)"
lab_eq "edu driver_override is (null)" "(null)" "$(lab_override $EDU)"
lab_eq "e1000 driver_override is (null)" "(null)" "$(lab_override $E1000)"
lab_absent "/dev/vfio/$G is gone" /dev/vfio/$G
lab_eq "drivers and overrides are as before" "$(echo "$before" | sed 's/ net=.*//')" "$(lab_snapshot | sed 's/ net=.*//')"
lab_done
