#include "pci/address_space.h"

#include <algorithm>

#include <fmt/format.h>

namespace devpass::pci {

uint64_t LoadLe(std::span<const uint8_t> data) {
  uint64_t v = 0;
  for (size_t i = 0; i < data.size() && i < 8; ++i) {
    v |= static_cast<uint64_t>(data[i]) << (8 * i);
  }
  return v;
}

void StoreLe(std::span<uint8_t> data, uint64_t value) {
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] = i < 8 ? static_cast<uint8_t>(value >> (8 * i)) : 0;
  }
}

Status AddressSpace::Add(uint64_t base, uint64_t size,
                         std::shared_ptr<IoHandler> handler,
                         std::string device_name) {
  if (size == 0 || base + size < base) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} range for {} at {:#x} has size {:#x}: it "
                                 "must be non-empty and not wrap around",
                                 name_, device_name, base, size));
  }
  const uint64_t end = base + size;
  // The first range starting at or after `base`, and the one before it.
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first < end) {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("{} range {:#x}-{:#x} of {} overlaps {} at "
                                 "{:#x}-{:#x}; give one of them another address",
                                 name_, base, end - 1, device_name,
                                 next->second.name, next->first,
                                 next->first + next->second.size - 1));
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.size > base) {
      return MakeError(ErrorCode::kConflict,
                       fmt::format("{} range {:#x}-{:#x} of {} overlaps {} at "
                                   "{:#x}-{:#x}; give one of them another address",
                                   name_, base, end - 1, device_name,
                                   prev->second.name, prev->first,
                                   prev->first + prev->second.size - 1));
    }
  }
  ranges_.emplace(base, Range{size, std::move(handler), std::move(device_name)});
  return Ok();
}

AddressSpace::Hit AddressSpace::Find(uint64_t address) const {
  auto it = ranges_.upper_bound(address);
  if (it == ranges_.begin()) return {};
  --it;
  if (address - it->first >= it->second.size) return {};
  return {it->second.handler.get(), address - it->first};
}

bool AddressSpace::Read(uint64_t address, std::span<uint8_t> data) const {
  Hit hit = Find(address);
  if (!hit.handler) {
    std::fill(data.begin(), data.end(), 0xff);
    return false;
  }
  hit.handler->Read(hit.offset, data);
  return true;
}

bool AddressSpace::Write(uint64_t address, std::span<const uint8_t> data) const {
  Hit hit = Find(address);
  if (!hit.handler) return false;
  hit.handler->Write(hit.offset, data);
  return true;
}

}  // namespace devpass::pci
