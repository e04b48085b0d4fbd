#pragma once

// Just enough of PCI config space parsing for the VFIO layer: the standard
// capability list and where the MSI and MSI-X capabilities put their state.
// MSI-X matters most: its table and PBA live inside a BAR, and that BAR page
// must stay trapped in the guest (vfio-pci reports it MSIX_MAPPABLE or leaves
// it out of the sparse mmap areas). Offsets from linux/pci_regs.h.

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace devpass::vfio {

struct MsiCapability {
  uint8_t offset = 0;
  uint16_t control = 0;
  bool is_64bit = false;
  bool per_vector_mask = false;
  uint32_t max_vectors = 1;  // 1 << Multiple Message Capable
};

struct MsixCapability {
  uint8_t offset = 0;
  uint16_t control = 0;
  uint32_t table_size = 0;  // entries
  uint8_t table_bar = 0;
  uint32_t table_offset = 0;
  uint8_t pba_bar = 0;
  uint32_t pba_offset = 0;
  uint32_t table_bytes() const {
    return table_size * 16;
  }  // PCI_MSIX_ENTRY_SIZE
  uint32_t pba_bytes() const {
    return ((table_size + 63) / 64) * 8;
  }  // 1 bit per vector, qwords
};

struct PciCapability {
  uint8_t offset = 0;
  uint8_t id = 0;
};

struct PciConfigSummary {
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint16_t command = 0;
  uint16_t status = 0;
  uint32_t class_code = 0;  // base/sub/prog-if
  uint8_t header_type = 0;
  uint8_t interrupt_pin = 0;                // 0 = none, 1..4 = INTA..INTD
  std::vector<PciCapability> capabilities;  // standard list, in chain order
  std::optional<MsiCapability> msi;
  std::optional<MsixCapability> msix;
};

// Parses what is there; a short buffer or a looping list just ends the walk.
PciConfigSummary ParsePciConfig(std::span<const uint8_t> config);

}  // namespace devpass::vfio
