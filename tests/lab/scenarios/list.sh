#!/bin/sh
# devpass list --json against the kernel's real IOMMU groups: every edu has
# its group; the e1000 and the edu behind the PCIe-to-PCI bridge share one.
. /lab/lib.sh
EDU1=$(lab_find_dev $LAB_ID_EDU 1)
EDU2=$(lab_find_dev $LAB_ID_EDU 2)
EDU_BR=$(lab_find_dev $LAB_ID_EDU 3)
E1000=$(lab_find_dev $LAB_ID_E1000 1)
E1000E=$(lab_find_dev $LAB_ID_E1000E 1)

lab_step "the lab's topology, from sysfs"
lab_snapshot

lab_step "devpass list"
lab_run devpass list
lab_rc "list exits 0" 0

lab_step "devpass list --json"
lab_run devpass list --json
lab_rc "list --json exits 0" 0
J=/tmp/list.json; cp "$LAB_OUT" $J
lab_check "prints a JSON array" jq -e 'type == "array"' $J
lab_eq "one entry per PCI device" "$(ls /sys/bus/pci/devices | wc -l)" "$(jq length $J)"
dev() {  # dev BDF JQ-FILTER: FILTER applied to BDF's entry
  jq -r --arg a "$1" ".[] | select(.address == \$a or .address == (\$a | ltrimstr(\"0000:\"))) | $2" $J
}
for d in $EDU1 $EDU2 $EDU_BR; do
  lab_eq "edu $d: iommu_group is the kernel's ($(lab_group $d))" "$(lab_group $d)" "$(dev $d '.iommu_group | tostring')"
done
lab_ne "the two edus on the root bus are in different groups" "$(dev $EDU1 .iommu_group)" "$(dev $EDU2 .iommu_group)"
lab_eq "the edu and the e1000 behind the bridge share a group" "$(dev $EDU_BR .iommu_group)" "$(dev $E1000 .iommu_group)"
lab_eq "edu $EDU_BR: group_members names the e1000 $E1000" 1 \
  "$(dev $EDU_BR '[.group_members[] | tostring | select(endswith("'"${E1000#0000:}"'"))] | length')"
lab_eq "e1000 $E1000: driver is e1000" e1000 "$(dev $E1000 .driver)"
lab_eq "e1000e $E1000E: driver is e1000e" e1000e "$(dev $E1000E .driver)"
lab_eq "edu $EDU1: assignable (own group, no host driver)" true "$(dev $EDU1 .assignable)"
lab_eq "edu $EDU_BR: not assignable alone (the e1000 in its group has a host driver)" false "$(dev $EDU_BR .assignable)"
lab_ne "edu $EDU_BR: reasons say why" 0 "$(dev $EDU_BR '.reasons | length')"

G=$(lab_group $EDU_BR)
lab_step "devpass list --group $G --json"
lab_run devpass list --group "$G" --json
lab_rc "list --group exits 0" 0
lab_eq "lists the group's members (bridge, e1000, edu)" "$(lab_group_members $EDU_BR | sort | tr '\n' ' ')" \
  "$(jq -r '.[].address' "$LAB_OUT" | sed 's/^\([0-9a-f][0-9a-f]:\)/0000:\1/' | sort | tr '\n' ' ')"

lab_step "devpass list --class 0200 --json (network controllers)"
lab_run devpass list --class 0200 --json
lab_rc "list --class exits 0" 0
lab_eq "the three NICs" 3 "$(jq length "$LAB_OUT")"

lab_step "devpass list --assignable --json"
lab_run devpass list --assignable --json
lab_rc "list --assignable exits 0" 0
lab_eq "includes edu $EDU1" 1 "$(jq --arg a $EDU1 '[.[] | select(.address == $a or .address == ($a | ltrimstr("0000:")))] | length' "$LAB_OUT")"
lab_eq "excludes edu $EDU_BR" 0 "$(jq --arg a $EDU_BR '[.[] | select(.address == $a or .address == ($a | ltrimstr("0000:")))] | length' "$LAB_OUT")"
lab_done
