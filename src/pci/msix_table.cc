#include "pci/msix_table.h"

#include <algorithm>

namespace devpass::pci {

uint32_t MsixTable::ReadDword(uint32_t vector, uint32_t dword) const {
  const Entry& e = entries_[vector];
  switch (dword) {
    case 0:
      return static_cast<uint32_t>(e.message.address);
    case 1:
      return static_cast<uint32_t>(e.message.address >> 32);
    case 2:
      return e.message.data;
    default:
      return e.masked ? 1u : 0u;
  }
}

bool MsixTable::WriteDword(uint32_t vector, uint32_t dword, uint32_t value) {
  Entry& e = entries_[vector];
  const Entry before = e;
  switch (dword) {
    case 0:  // bits 1:0 are reserved, read as zero (dword-aligned address)
      e.message.address = (e.message.address & ~0xffffffffull) | (value & ~3u);
      break;
    case 1:
      e.message.address = (e.message.address & 0xffffffffull) |
                          (static_cast<uint64_t>(value) << 32);
      break;
    case 2:
      e.message.data = value;
      break;
    default:
      e.masked = value & 1;
      break;  // other bits reserved
  }
  return before.message != e.message || before.masked != e.masked;
}

void MsixTable::Read(uint64_t offset, std::span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
  for (size_t i = 0; i < data.size(); i += 4) {
    const uint64_t at = offset + i;
    const uint64_t vector = at / kMsixEntrySize;
    if (vector >= entries_.size() || data.size() - i < 4 || at % 4) break;
    StoreLe(data.subspan(i, 4), ReadDword(static_cast<uint32_t>(vector),
                                          (at % kMsixEntrySize) / 4));
  }
}

std::vector<uint32_t> MsixTable::Write(uint64_t offset,
                                       std::span<const uint8_t> data) {
  std::vector<uint32_t> changed;
  for (size_t i = 0; i < data.size(); i += 4) {
    const uint64_t at = offset + i;
    const uint64_t vector = at / kMsixEntrySize;
    if (vector >= entries_.size() || data.size() - i < 4 || at % 4) break;
    const auto value = static_cast<uint32_t>(LoadLe(data.subspan(i, 4)));
    if (WriteDword(static_cast<uint32_t>(vector), (at % kMsixEntrySize) / 4,
                   value) &&
        (changed.empty() || changed.back() != vector)) {
      changed.push_back(static_cast<uint32_t>(vector));
    }
  }
  return changed;
}

void MsixTable::Reset() {
  for (Entry& e : entries_) e = Entry{};
}

}  // namespace devpass::pci
