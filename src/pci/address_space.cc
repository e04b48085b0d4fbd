#include "pci/address_space.h"

#include <fmt/format.h>

#include <algorithm>
#include <mutex>

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

std::optional<AddressSpace::RangeInfo> AddressSpace::FindOverlapLocked(
    uint64_t base, uint64_t end) const {
  // The first range starting at or after `base`, and the one before it.
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first < end) {
    return RangeInfo{next->first, next->second.size, next->second.name};
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.size > base) {
      return RangeInfo{prev->first, prev->second.size, prev->second.name};
    }
  }
  return std::nullopt;
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
  std::unique_lock lock(mu_);
  if (auto other = FindOverlapLocked(base, end)) {
    return MakeError(
        ErrorCode::kConflict,
        fmt::format("{} range {:#x}-{:#x} of {} overlaps {} at "
                    "{:#x}-{:#x}; give one of them another address",
                    name_, base, end - 1, device_name, other->name, other->base,
                    other->base + other->size - 1));
  }
  ranges_.emplace(base,
                  Range{size, std::move(handler), std::move(device_name)});
  return Ok();
}

Result<std::shared_ptr<IoHandler>> AddressSpace::Remove(uint64_t base) {
  std::unique_lock lock(mu_);
  auto it = ranges_.find(base);
  if (it == ranges_.end()) {
    return MakeError(ErrorCode::kNotFound,
                     fmt::format("no {} range starts at {:#x}", name_, base));
  }
  std::shared_ptr<IoHandler> handler = std::move(it->second.handler);
  ranges_.erase(it);
  return handler;
}

void AddressSpace::Clear() {
  std::map<uint64_t, Range> gone;
  {
    std::unique_lock lock(mu_);
    gone.swap(ranges_);
  }
  // `gone` (and the last references to the handlers) dies here, unlocked.
}

AddressSpace::Hit AddressSpace::Find(uint64_t address) const {
  std::shared_lock lock(mu_);
  auto it = ranges_.upper_bound(address);
  if (it == ranges_.begin()) return {};
  --it;
  if (address - it->first >= it->second.size) return {};
  return {it->second.handler, address - it->first};
}

std::optional<AddressSpace::RangeInfo> AddressSpace::FindOverlap(
    uint64_t base, uint64_t size) const {
  if (size == 0) return std::nullopt;
  const uint64_t end = base + size < base ? ~uint64_t{0} : base + size;
  std::shared_lock lock(mu_);
  return FindOverlapLocked(base, end);
}

bool AddressSpace::Read(uint64_t address, std::span<uint8_t> data) const {
  Hit hit = Find(address);  // the lock is released again here
  if (!hit.handler) {
    std::fill(data.begin(), data.end(), 0xff);
    return false;
  }
  hit.handler->Read(hit.offset, data);
  return true;
}

bool AddressSpace::Write(uint64_t address,
                         std::span<const uint8_t> data) const {
  Hit hit = Find(address);
  if (!hit.handler) return false;
  hit.handler->Write(hit.offset, data);
  return true;
}

size_t AddressSpace::size() const {
  std::shared_lock lock(mu_);
  return ranges_.size();
}

}  // namespace devpass::pci
