#!/bin/sh
# The guest side of edu passthrough, end to end under a mature VMM: QEMU
# (-accel kvm -M q35) inside the lab passes the edu through with
# -device vfio-pci,host=BDF (the lab's real VFIO and emulated IOMMU); the
# nested guest (the lab's own kernel, no IOMMU) runs guest_edu with its own
# vfio-pci in no-IOMMU mode. Also the attacks' reference behaviour under QEMU:
#   - DMA to a GPA outside guest RAM: the IOMMU faults it (dmesg DMAR fault
#     for the edu) and it does not land (guest_edu --dma-to --peek);
#   - BAR0 moved onto guest RAM: RAM keeps its contents (guest_attack).
# QEMU comes from the extra disk (ctest: lab.qemu-disk). Argument: N for
# guest_edu --bench N (default 20): "BENCH qemu ..." lines.
. /lab/lib.sh
lab_qemu_prepare
EDU=$(lab_find_dev $LAB_ID_EDU 1)
EDU2=$(lab_find_dev $LAB_ID_EDU 2)
N=${1:-20}
MEM=128                   # MiB: edu reaches 28 bits, so the wild GPA must be below 256 MiB
WILD=0x0c000000           # 192 MiB: above the guest's RAM, below edu's DMA mask

lab_step "hide $EDU and $EDU2 (vfio-pci in the lab)"
for d in $EDU $EDU2; do
  lab_run devpass hide "$d"
  lab_rc "hide $d exits 0" 0
done

lab_step "guest 1: guest_edu --bench $N under QEMU vfio-pci"
lab_run lab-guest-initrd --modules vfio-pci --bin /usr/bin/guest_edu \
  --env EDU_ARGS="--bench $N" /tmp/edu.img /lab/guest-scripts/edu.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_qemu_guest --mem $MEM --device "$EDU" /tmp/edu.img
lab_eq "the guest script exits 0" 0 "$(lab_guest_status)"
lab_out_has "the guest loaded vfio in no-IOMMU mode" "guest: modules loaded:.* vfio .*vfio-pci"
for c in "vfio no-IOMMU mode" "bind to vfio-pci" "open VFIO no-IOMMU" "ident register" \
         "liveness register" "MSI enabled" "factorial with MSI" "DMA pages" "DMA round trip" \
         "DMA completion MSI"; do
  lab_out_has "guest: $c" "^ok $c:"
done
lab_out_has "guest: no check failed" "^guest_edu: [0-9]+ checks, 0 failed"
grep -a '^bench ' "$LAB_OUT" | sed 's/^bench /BENCH qemu /'
echo "QEMU guest 1 (boot + guest_edu --bench $N): ${LAB_GUEST_SECONDS}s"

lab_step "guest 2: DMA to GPA $WILD, outside the guest's $MEM MiB"
before=$(lab_dmar_faults "$EDU")
lab_run lab-guest-initrd --modules vfio-pci --bin /usr/bin/guest_edu \
  --env EDU_ARGS="--dma-to $WILD --peek" /tmp/wild.img /lab/guest-scripts/edu.sh
lab_qemu_guest --mem $MEM --device "$EDU" /tmp/wild.img
lab_out_has "guest: the edu took the DMA" "^ok dma-to issued:"
lab_out_has "guest: the marker did not land at $WILD" "^ok dma-to did not land:"
lab_eq "the guest script exits 0" 0 "$(lab_guest_status)"
after=$(lab_dmar_faults "$EDU")
lab_check "the lab's IOMMU faulted the edu's DMA ($before -> $after faults)" [ "$after" -gt "$before" ]
dmesg | grep -E "DMAR: \[DMA Write.*Request device \[${EDU#0000:}\]" | tail -2

lab_step "guest 3: BAR0 of one edu onto guest RAM, then onto the other edu's BAR"
lab_run lab-guest-initrd --bin /usr/bin/guest_attack \
  --env ATTACK_ARGS="bar-onto-ram @EDU @EDU2" /tmp/bar.img /lab/guest-scripts/attack.sh
lab_qemu_guest --mem $MEM --device "$EDU" --device "$EDU2" /tmp/bar.img
lab_out_has "guest: the RAM page kept its contents" "^observed: BAR0 reads back .*; page unchanged; a write to it reads back"
lab_out_has "guest: still unchanged after the BAR is restored" "^observed: after restoring BAR0 .*: page unchanged"
lab_out_has "guest: verdict BLOCKED for RAM" "^verdict BLOCKED: guest RAM kept its contents"
# Two BARs of the guest's own devices overlapping is undefined on a real bus;
# what QEMU does is recorded, not judged (it lets the moved one win).
echo "QEMU, edu onto the other edu's window: $(grep -a "window reads" "$LAB_OUT" | sed 's/^observed: //')"
echo "guest_attack bar-onto-ram + bar-onto-bar exit status under QEMU: $(lab_guest_status)"

for d in $EDU $EDU2; do lab_run devpass unhide "$d"; done
lab_done
