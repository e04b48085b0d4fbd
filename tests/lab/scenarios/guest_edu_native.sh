#!/bin/sh
# guest_edu, "the guest's own edu driver" (programs/guest_edu.cc), natively on
# a lab host without an IOMMU (registered with --no-iommu): the exact program
# nested guests run, proven on the lab's own kernel, and the native baseline
# of the passthrough benchmark (its "bench" lines).
# vfio no-IOMMU mode comes from the lab's rebuilt vfio.ko (/lab/noiommu,
# tests/lab/build): Debian's is built without CONFIG_VFIO_NOIOMMU.
# Then guest_edu --intx: the INTx path (VFIO trigger eventfd + unmask) the
# devpass scenario (assign_edu.sh guest 4) repeats in a nested guest.
# Argument: N for guest_edu --bench N (default 20).
. /lab/lib.sh
EDU=$(lab_find_dev $LAB_ID_EDU 1)
N=${1:-20}

lab_step "vfio in no-IOMMU mode"
lab_eq "the lab runs without an IOMMU (--no-iommu)" 0 "$LAB_IOMMU"
lab_eq "no IOMMU groups" 0 "$(ls /sys/kernel/iommu_groups | wc -l)"
lab_exists "the no-IOMMU vfio.ko is in the lab" /lab/noiommu/vfio.ko
lab_run insmod /lab/noiommu/vfio.ko enable_unsafe_noiommu_mode=1
lab_rc "insmod vfio.ko enable_unsafe_noiommu_mode=1" 0
lab_run modprobe vfio-pci
lab_rc "the stock vfio-pci loads on top of it" 0

lab_step "guest_edu $EDU --bench $N"
lab_run guest_edu "$EDU" --bench "$N"
lab_rc "guest_edu exits 0" 0
for c in "vfio no-IOMMU mode" "bind to vfio-pci" "open VFIO no-IOMMU" "ident register" \
         "liveness register" "MSI enabled" "factorial with MSI" "DMA pages" "DMA round trip" \
         "DMA completion MSI"; do
  lab_out_has "$c" "^ok $c:"
done
lab_out_has "no check failed" "^guest_edu: [0-9]+ checks, 0 failed"
lab_eq "$EDU is on vfio-pci" vfio-pci "$(lab_driver "$EDU")"
lab_exists "its group is a no-IOMMU group" "/dev/vfio/noiommu-$(lab_group "$EDU")"
lab_check "the kernel says so" sh -c "dmesg | grep -q 'vfio-noiommu device opened by user'"
grep '^bench ' "$LAB_OUT" | sed 's/^bench /BENCH native /'

lab_step "a second run finds the device already bound"
lab_run guest_edu "$EDU"
lab_rc "guest_edu exits 0 again" 0
lab_out_has "already on vfio-pci" "^ok bind to vfio-pci: $EDU driver vfio-pci -> vfio-pci"

lab_step "guest_edu $EDU --intx: 5 factorials on INTx, unmasked through VFIO each time"
lab_run guest_edu "$EDU" --intx
lab_rc "guest_edu --intx exits 0" 0
for c in "INTx irq info" "INTx enabled" "intx round 1" "intx round 2" "intx round 3" \
         "intx round 4" "intx round 5"; do
  lab_out_has "$c" "^ok $c:"
done
lab_out_has "no check failed" "^guest_edu: [0-9]+ checks, 0 failed"
grep -a 'vfio-intx' "$LAB_OUT"
lab_done
