#pragma once

// Guest RAM: one anonymous host mapping (MAP_NORESERVE: pages are only
// committed when the guest touches them), split into the region below the
// 32-bit PCI hole and the region above 4 GiB. Backed by transparent huge
// pages (madvise MADV_HUGEPAGE, devpass run's default), hugetlbfs pages
// (MAP_HUGETLB), or 4 KiB pages only (MADV_NOHUGEPAGE: --no-thp).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "vmm/layout.h"

namespace devpass::vmm {

enum class Backing { kSmallPages, kHugetlb, kThp };

struct RamRegion {
  Gpa start;
  uint64_t size = 0;
  uint64_t host_offset = 0;  // into the mapping
  Gpa end() const { return start + size; }
};

// Where `bytes` of RAM go: [0, min(bytes, hole)) and the rest from 4 GiB.
std::vector<RamRegion> PlanRam(uint64_t bytes);

// Values from <root>/proc/meminfo, in bytes (0 when absent).
struct MemInfo {
  uint64_t available = 0;
  uint64_t hugepages_free = 0;  // pages
  uint64_t hugepage_size = 0;
};
Result<MemInfo> ReadMemInfo(const Root& root);

// Refuses a size the host cannot give, with numbers, before anything is
// mapped.
Status CheckHostMemory(const MemInfo& info, uint64_t bytes, Backing backing);

class GuestMemory {
 public:
  static Result<GuestMemory> Create(uint64_t bytes, Backing backing);
  GuestMemory() = default;  // empty: no RAM
  ~GuestMemory();
  GuestMemory(GuestMemory&& o) noexcept;
  GuestMemory& operator=(GuestMemory&& o) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  const std::vector<RamRegion>& regions() const { return regions_; }
  uint64_t total() const { return total_; }
  uint8_t* host_base() const { return base_; }
  // Top of RAM below 4 GiB.
  Gpa low_end() const {
    return regions_.empty() ? Gpa() : regions_.front().end();
  }

  // Host pointer for [gpa, gpa + len), which must lie within one region.
  Result<uint8_t*> HostRange(Gpa gpa, uint64_t len) const;
  Status Write(Gpa gpa, std::span<const uint8_t> data) const;

 private:
  uint8_t* base_ = nullptr;
  uint64_t mapped_ = 0;
  uint64_t total_ = 0;
  std::vector<RamRegion> regions_;
};

}  // namespace devpass::vmm
