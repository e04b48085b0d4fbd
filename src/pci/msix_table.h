#pragma once

// The guest's MSI-X table and Pending Bit Array, emulated (PCI Local Bus 3.0
// §6.8.2). The real table stays out of the guest's reach: vfio-pci programs
// it with host-chosen addresses, and devpass never maps the table's pages
// into the guest. What the guest writes here only decides where KVM injects
// each vector (an MSI route), never where the device writes.
//
// Table entry layout (16 bytes, §6.8.2.6-9):
//   +0 Message Address (dword aligned), +4 Message Upper Address,
//   +8 Message Data, +12 Vector Control (bit 0: Mask; resets to 1).

#include <cstdint>
#include <span>
#include <vector>

#include "pci/guest_platform.h"

namespace devpass::pci {

inline constexpr uint32_t kMsixEntrySize = 16;

class MsixTable {
 public:
  struct Entry {
    MsiMessage message;
    bool masked = true;
  };

  explicit MsixTable(uint32_t entries) : entries_(entries) {}

  uint32_t size() const { return static_cast<uint32_t>(entries_.size()); }
  uint32_t table_bytes() const { return size() * kMsixEntrySize; }
  // One bit per vector, in qwords (§6.8.2.10).
  uint32_t pba_bytes() const { return (size() + 63) / 64 * 8; }

  const Entry& entry(uint32_t vector) const { return entries_.at(vector); }

  // Accesses at `offset` into the table (dword or qword, naturally aligned;
  // §6.8.2 allows nothing else). Reads outside the table return zeros.
  void Read(uint64_t offset, std::span<uint8_t> data) const;
  // Returns the vectors whose entry changed (address, data or mask), so the
  // owner can re-route just those.
  std::vector<uint32_t> Write(uint64_t offset, std::span<const uint8_t> data);

  // Back to the power-on state: every entry zero and masked (§6.8.2.9).
  void Reset();

 private:
  uint32_t ReadDword(uint32_t vector, uint32_t dword) const;
  bool WriteDword(uint32_t vector, uint32_t dword, uint32_t value);

  std::vector<Entry> entries_;
};

}  // namespace devpass::pci
