#!/bin/sh
# The VFIO layer (module 2, host side) on the real kernel: lab_vfio_edu drives
# an edu through devpass's library; `devpass inspect` describes edu, e1000e and
# NVMe as VFIO presents them. Register with (tests/lab/CMakeLists.txt):
#   lab_scenario(vfio ../programs/vfio.sh)
. /lab/lib.sh
EDU=$(lab_find_dev $LAB_ID_EDU 1)
NIC=$(lab_find_dev $LAB_ID_E1000E 2)
NVME=$(lab_find_dev $LAB_ID_NVME 1)

lab_step "inspect refuses a device that is not hidden"
lab_run devpass inspect $EDU
lab_rc "inspect of an unhidden edu exits 1" 1
lab_out_has "it says to run devpass hide" "devpass hide $EDU"

lab_step "hide the edu $EDU and drive it through VFIO"
lab_run devpass hide $EDU
lab_rc "hide exits 0" 0
lab_run lab_vfio_edu $EDU
lab_rc "lab_vfio_edu exits 0" 0
for c in "ident register 0x00" "liveness register 0x04" "factorial 10! with MSI" \
         "DMA RAM -> edu -> RAM" "DMA completion MSI" "DMA to unmapped IOVA 0x800000" \
         "INTx raise, ack, unmask" "DMA after UNMAP blocked"; do
  lab_out_has "$c passes" "CHECK $c +PASS"
done
lab_out_has "reset is reported, not failed" "CHECK VFIO_DEVICE_RESET +(PASS|INFO)"
# The blocked DMA is the IOMMU's doing: it logged a translation fault for the
# edu (the host carries on: the steps below still work).
lab_check "the IOMMU logged a DMA fault for the edu" \
  sh -c "dmesg | grep -E 'DMAR: \[DMA Write.*Request device \[${EDU#0000:}\] fault addr'"

lab_step "devpass inspect the edu"
lab_run devpass inspect $EDU
lab_rc "inspect exits 0" 0
lab_out_has "text shows BAR0" "BAR0 +1MiB +read,write,mmap"
lab_run devpass inspect --json $EDU
lab_rc "inspect --json exits 0" 0
lab_check "BAR0 is 1 MiB and mmappable" jq -e '.regions[0].size == 1048576 and (.regions[0].flags | index("mmap"))' "$LAB_OUT"
lab_check "config is 1234:11e8" jq -e '.config.vendor == "1234" and .config.device == "11e8"' "$LAB_OUT"
lab_check "one MSI vector" jq -e '.irqs[1].name == "MSI" and .irqs[1].count == 1' "$LAB_OUT"
lab_check "IOMMU is type1v2 with IOVA ranges" jq -e '.iommu.backend == "vfio-type1v2" and (.iommu.iova_ranges | length) > 0' "$LAB_OUT"
lab_check "the MSI window is reserved" jq -e '[.reserved_regions[] | select(.type == "msi")] | length > 0' "$LAB_OUT"
lab_run devpass unhide $EDU

lab_step "devpass inspect an e1000e ($NIC) and the NVMe ($NVME)"
for d in $NIC $NVME; do
  lab_run devpass hide $d
  lab_rc "hide $d exits 0" 0
  lab_run devpass inspect --json $d
  lab_rc "inspect --json $d exits 0" 0
  lab_check "$d has MSI-X with a table" jq -e '.msix.vectors > 0 and .msix.table.size > 0' "$LAB_OUT"
  lab_check "$d's MSI-X BAR is mappable or sparse" \
    jq -e '.regions[.msix.table.bar] | (.msix_mappable or has("mmap_areas"))' "$LAB_OUT"
  lab_run devpass unhide $d
done
lab_done
