#include "vfio/pci_config.h"

#include <linux/pci_regs.h>

#include <set>

namespace devpass::vfio {
namespace {

uint8_t At8(std::span<const uint8_t> c, size_t off) {
  return off < c.size() ? c[off] : 0;
}
uint16_t At16(std::span<const uint8_t> c, size_t off) {
  return static_cast<uint16_t>(At8(c, off) | At8(c, off + 1) << 8);
}
uint32_t At32(std::span<const uint8_t> c, size_t off) {
  return static_cast<uint32_t>(At16(c, off)) |
         static_cast<uint32_t>(At16(c, off + 2)) << 16;
}

}  // namespace

PciConfigSummary ParsePciConfig(std::span<const uint8_t> c) {
  PciConfigSummary s;
  s.vendor_id = At16(c, PCI_VENDOR_ID);
  s.device_id = At16(c, PCI_DEVICE_ID);
  s.command = At16(c, PCI_COMMAND);
  s.status = At16(c, PCI_STATUS);
  s.class_code = At32(c, PCI_CLASS_REVISION) >> 8;
  s.header_type = At8(c, PCI_HEADER_TYPE);
  s.interrupt_pin = At8(c, PCI_INTERRUPT_PIN);
  if (!(s.status & PCI_STATUS_CAP_LIST)) return s;
  std::set<uint8_t> seen;
  for (uint8_t off = At8(c, PCI_CAPABILITY_LIST) & ~3u; off >= 0x40;
       off = At8(c, off + PCI_CAP_LIST_NEXT) & ~3u) {
    if (off + 4u > c.size() || !seen.insert(off).second) break;
    uint8_t id = At8(c, off + PCI_CAP_LIST_ID);
    s.capabilities.push_back({off, id});
    if (id == PCI_CAP_ID_MSI) {
      MsiCapability msi;
      msi.offset = off;
      msi.control = At16(c, off + PCI_MSI_FLAGS);
      msi.is_64bit = msi.control & PCI_MSI_FLAGS_64BIT;
      msi.per_vector_mask = msi.control & PCI_MSI_FLAGS_MASKBIT;
      msi.max_vectors = 1u << ((msi.control & PCI_MSI_FLAGS_QMASK) >> 1);
      s.msi = msi;
    } else if (id == PCI_CAP_ID_MSIX) {
      MsixCapability x;
      x.offset = off;
      x.control = At16(c, off + PCI_MSIX_FLAGS);
      x.table_size = (x.control & PCI_MSIX_FLAGS_QSIZE) + 1u;
      uint32_t table = At32(c, off + PCI_MSIX_TABLE);
      uint32_t pba = At32(c, off + PCI_MSIX_PBA);
      x.table_bar = table & PCI_MSIX_TABLE_BIR;
      x.table_offset = table & PCI_MSIX_TABLE_OFFSET;
      x.pba_bar = pba & PCI_MSIX_PBA_BIR;
      x.pba_offset = pba & PCI_MSIX_PBA_OFFSET;
      s.msix = x;
    }
  }
  return s;
}

}  // namespace devpass::vfio
