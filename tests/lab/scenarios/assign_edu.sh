#!/bin/sh
# Device assignment with devpass's own VMM (issue 6), QEMU's edu device:
#   guest 1  devpass run --device EDU hides the edu for the run; the guest's
#            own vfio-pci (no-IOMMU mode) drives it: ident, liveness, 10! with
#            an MSI, a DMA round trip through the lab's IOMMU; given back.
#   guest 2  DMA outside the guest's RAM: the IOMMU refuses it (DMAR fault
#            for the edu in the lab's dmesg) and it does not land.
#   guest 3  the guest moves BAR0 onto its own RAM, then onto the other edu's
#            window: devpass leaves it unmapped (RAM keeps its contents, the
#            other edu keeps answering).
#   guest 4  INTx instead of MSI (guest_edu --intx): 5 factorials, each acked
#            in the edu and unmasked through the guest's VFIO; under devpass
#            the edu's INTx is a VFIO trigger eventfd -> KVM irqfd on the
#            IOAPIC GSI, with a resample eventfd as VFIO's unmask: a lost
#            resample hangs round 2.
# Argument: N for guest_edu --bench N (default 20): "BENCH devpass ..." lines.
. /lab/lib.sh
lab_vmm_prepare
# Four guests in the lab's 900 s: one that hangs is killed early enough for
# the scenario to report it (devpass prints where its vCPUs were).
LAB_GUEST_TIMEOUT=300
EDU=$(lab_find_dev $LAB_ID_EDU 1)
EDU2=$(lab_find_dev $LAB_ID_EDU 2)
N=${1:-20}
MEM=128                   # MiB: edu reaches 28 bits, so the wild GPA must be below 256 MiB
WILD=0x0c000000           # 192 MiB: above the guest's RAM, below edu's DMA mask

lab_step "guest 1: guest_edu --bench $N, edu $EDU hidden for the run"
lab_eq "$EDU starts with no driver" "" "$(lab_driver "$EDU")"
lab_run lab-guest-initrd --modules vfio-pci --bin /usr/bin/guest_edu \
  --env EDU_ARGS="--bench $N" /tmp/edu.img /lab/guest-scripts/edu.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_devpass_guest /tmp/edu.img --mem $MEM --device "$EDU" --name edu1
lab_rc "devpass run exits 0 (the guest powered off)" 0
lab_eq "the guest script exits 0" 0 "$(lab_guest_status)"
lab_out_has "devpass hid the edu for the run" "devpass: edu1: $EDU: hidden for guest 'edu1'"
lab_out_has "the edu is the guest's 00:01.0 with BAR0 in the 32-bit window" \
  "devpass: edu1: $EDU is guest 00:01.0, BAR0 1 MiB at 0xc0000000"
lab_out_has "guest RAM mapped in the IOMMU" "guest RAM \\(128 MiB\\) mapped for DMA in the IOMMU"
for c in "bind to vfio-pci" "ident register" "liveness register" "MSI enabled" \
         "factorial with MSI" "DMA round trip" "DMA completion MSI"; do
  lab_out_has "guest: $c" "^ok $c:"
done
lab_out_has "guest: no check failed" "^guest_edu: [0-9]+ checks, 0 failed"
lab_out_has "devpass gave the edu back" "devpass: edu1: $EDU given back"
lab_eq "$EDU has no driver again" "" "$(lab_driver "$EDU")"
ov=$(lab_override "$EDU")
[ "$ov" = "(null)" ] && ov=   # what sysfs shows for "none"
lab_eq "$EDU has no driver_override left" "" "$ov"
grep -a '^bench ' "$LAB_OUT" | sed 's/^bench /BENCH devpass /'
echo "devpass guest 1 (boot + guest_edu --bench $N): ${LAB_GUEST_SECONDS}s"

lab_step "guest 2: DMA to GPA $WILD, outside the guest's $MEM MiB"
before=$(lab_dmar_faults "$EDU")
lab_run lab-guest-initrd --modules vfio-pci --bin /usr/bin/guest_edu \
  --env EDU_ARGS="--dma-to $WILD --peek" /tmp/wild.img /lab/guest-scripts/edu.sh
lab_devpass_guest /tmp/wild.img --mem $MEM --device "$EDU" --name edu2
lab_rc "devpass run exits 0" 0
lab_out_has "guest: the edu took the DMA" "^ok dma-to issued:"
lab_out_has "guest: the marker did not land at $WILD" "^ok dma-to did not land:"
lab_eq "the guest script exits 0" 0 "$(lab_guest_status)"
after=$(lab_dmar_faults "$EDU")
lab_check "the lab's IOMMU faulted the edu's DMA ($before -> $after faults)" [ "$after" -gt "$before" ]
dmesg | grep -E "DMAR: \[DMA Write.*Request device \[${EDU#0000:}\]" | tail -1

lab_step "guest 3: BAR0 of one edu onto guest RAM, then onto the other edu's BAR"
lab_run lab-guest-initrd --bin /usr/bin/guest_attack \
  --env ATTACK_ARGS="bar-onto-ram @EDU @EDU2" /tmp/bar.img /lab/guest-scripts/attack.sh
lab_devpass_guest /tmp/bar.img --mem $MEM --device "$EDU" --device "$EDU2" --name bars
lab_rc "devpass run exits 0" 0
lab_out_has "guest: the RAM page kept its contents" "^observed: BAR0 reads back .*; page unchanged; a write to it reads back"
lab_out_has "guest: verdict BLOCKED for RAM" "^verdict BLOCKED: guest RAM kept its contents"
lab_out_has "guest: verdict BLOCKED for the other edu's window" "^verdict BLOCKED: the other device kept its window"
lab_out_has "devpass refused the BAR on RAM" "the guest placed BAR0 .* outside the guest's PCI windows; it stays unmapped"
lab_out_has "devpass refused the BAR on the other edu" "BAR0 not mapped at 0x[0-9a-f]+: .*"
lab_eq "guest_attack: everything blocked (exit 0)" 0 "$(lab_guest_status)"
for d in $EDU $EDU2; do lab_eq "$d given back (no driver)" "" "$(lab_driver "$d")"; done

lab_step "guest 4: INTx, edu $EDU"
lab_run lab-guest-initrd --modules vfio-pci --bin /usr/bin/guest_edu \
  --env EDU_ARGS="--intx" /tmp/intx.img /lab/guest-scripts/edu.sh
lab_rc "lab-guest-initrd exits 0" 0
lab_devpass_guest /tmp/intx.img --mem $MEM --device "$EDU" --name intx
lab_rc "devpass run exits 0 (the guest powered off)" 0
lab_eq "the guest script exits 0" 0 "$(lab_guest_status)"
lab_out_has "devpass wired the edu's INTx to a GSI" "devpass: intx: .*INTx on GSI"
gsi=$(grep -a -o 'INTx on GSI [0-9]*' "$LAB_OUT" | head -1 | sed 's/.* //')
lab_out_has "guest: vfio-intx on IOAPIC input $gsi, where devpass routed it (ACPI _PRT)" \
  "^info $gsi: [0-9]+ .*IO-APIC.* vfio-intx\\($EDU\\)"
for c in "INTx irq info" "INTx enabled" "intx round 1" "intx round 2" "intx round 3" \
         "intx round 4" "intx round 5"; do
  lab_out_has "guest: $c" "^ok $c:"
done
lab_out_has "guest: no check failed" "^guest_edu: [0-9]+ checks, 0 failed"
grep -a -e '^ok intx round' -e 'vfio-intx' "$LAB_OUT"
lab_eq "$EDU given back (no driver)" "" "$(lab_driver "$EDU")"
echo "devpass guest 4 (boot + guest_edu --intx): ${LAB_GUEST_SECONDS}s"

lab_step "after: nothing assigned, nothing hidden"
lab_run devpass status --json
lab_out_has "status: no device hidden" '"hidden": \[\]'
lab_done
