#include "vmm/guest_memory.h"

#include <fmt/format.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "base/fs.h"

namespace devpass::vmm {

std::vector<RamRegion> PlanRam(uint64_t bytes) {
  std::vector<RamRegion> out;
  const uint64_t low = std::min(bytes, layout::kPciHole.value);
  out.push_back({Gpa(0), low, 0});
  if (bytes > low) out.push_back({layout::k4GiB, bytes - low, low});
  return out;
}

Result<MemInfo> ReadMemInfo(const Root& root) {
  auto path = root.Proc("meminfo");
  DP_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  MemInfo info;
  std::istringstream in(text);
  std::string key;
  uint64_t value = 0;
  std::string unit;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    unit.clear();
    if (!(l >> key >> value)) continue;
    l >> unit;
    const uint64_t mult = unit == "kB" ? 1024 : 1;
    if (key == "MemAvailable:") info.available = value * mult;
    if (key == "HugePages_Free:") info.hugepages_free = value;
    if (key == "Hugepagesize:") info.hugepage_size = value * mult;
  }
  return info;
}

Status CheckHostMemory(const MemInfo& info, uint64_t bytes, Backing backing) {
  if (backing == Backing::kHugetlb) {
    if (info.hugepage_size == 0) {
      return MakeError(ErrorCode::kUnsupported,
                       "the host has no hugetlbfs pages (no Hugepagesize in "
                       "/proc/meminfo); drop --hugepages (transparent huge "
                       "pages are the default)");
    }
    if (bytes % info.hugepage_size != 0) {
      return MakeError(ErrorCode::kInvalidArgument,
                       fmt::format("--mem {} MiB is not a multiple of the huge "
                                   "page size ({} KiB)",
                                   bytes / kMiB, info.hugepage_size / kKiB));
    }
    const uint64_t have = info.hugepages_free * info.hugepage_size;
    if (have < bytes) {
      return MakeError(
          ErrorCode::kUnsupported,
          fmt::format(
              "--hugepages: the guest needs {} MiB but only {} free huge "
              "pages ({} MiB) exist; reserve more with "
              "`echo {} > /proc/sys/vm/nr_hugepages` or drop --hugepages "
              "(transparent huge pages are the default)",
              bytes / kMiB, info.hugepages_free, have / kMiB,
              (bytes + info.hugepage_size - 1) / info.hugepage_size));
    }
    return Ok();
  }
  if (info.available != 0 && bytes > info.available) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("the guest needs {} MiB of RAM but the host has "
                    "only {} MiB available (MemAvailable in "
                    "/proc/meminfo); give a smaller --mem",
                    bytes / kMiB, info.available / kMiB));
  }
  return Ok();
}

Result<GuestMemory> GuestMemory::Create(uint64_t bytes, Backing backing) {
  if (bytes < 64 * kMiB) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("--mem {} MiB is too small: a Linux guest needs "
                    "at least 64 MiB",
                    bytes / kMiB));
  }
  int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  if (backing == Backing::kHugetlb) flags |= MAP_HUGETLB;
  // KVM maps guest memory with 2 MiB pages only where the host address and
  // the guest-physical address agree modulo 2 MiB; so the mapping starts on
  // a 2 MiB boundary (hugetlb mappings already do). Fewer, larger faults
  // matter most under nested virtualization.
  const uint64_t slack = backing == Backing::kHugetlb ? 0 : 2 * kMiB;
  void* p =
      ::mmap(nullptr, bytes + slack, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    return ErrnoError(
        err, fmt::format("cannot map {} MiB of guest RAM{}: {}", bytes / kMiB,
                         backing == Backing::kHugetlb ? " from huge pages" : "",
                         backing == Backing::kHugetlb
                             ? "reserve huge pages in /proc/sys/vm/nr_hugepages"
                             : "give a smaller --mem"));
  }
  if (slack) {
    const uintptr_t raw = reinterpret_cast<uintptr_t>(p);
    const uintptr_t aligned = (raw + slack - 1) & ~(uintptr_t{slack} - 1);
    if (aligned > raw) ::munmap(p, aligned - raw);
    const uintptr_t tail = raw + bytes + slack - (aligned + bytes);
    if (tail) ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
    p = reinterpret_cast<void*>(aligned);
  }
  // Best effort both ways: THP may be disabled system-wide (then both are
  // 4 KiB pages); the guest runs regardless. MADV_NOHUGEPAGE also holds
  // against THP "always", so --no-thp means 4 KiB pages on any host.
  if (backing == Backing::kThp) ::madvise(p, bytes, MADV_HUGEPAGE);
  if (backing == Backing::kSmallPages) ::madvise(p, bytes, MADV_NOHUGEPAGE);
  GuestMemory m;
  m.base_ = static_cast<uint8_t*>(p);
  m.mapped_ = bytes;
  m.total_ = bytes;
  m.regions_ = PlanRam(bytes);
  return m;
}

GuestMemory::~GuestMemory() {
  if (base_) ::munmap(base_, mapped_);
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept { *this = std::move(o); }

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    if (base_) ::munmap(base_, mapped_);
    base_ = std::exchange(o.base_, nullptr);
    mapped_ = std::exchange(o.mapped_, 0);
    total_ = o.total_;
    regions_ = std::move(o.regions_);
  }
  return *this;
}

Result<uint8_t*> GuestMemory::HostRange(Gpa gpa, uint64_t len) const {
  for (const RamRegion& r : regions_) {
    if (gpa >= r.start && gpa.value - r.start.value <= r.size &&
        len <= r.size - (gpa.value - r.start.value)) {
      return base_ + r.host_offset + (gpa.value - r.start.value);
    }
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   fmt::format("guest range {:#x}+{:#x} is not RAM ({} MiB "
                               "configured); give a larger --mem",
                               gpa.value, len, total_ / kMiB));
}

Status GuestMemory::Write(Gpa gpa, std::span<const uint8_t> data) const {
  DP_ASSIGN_OR_RETURN(uint8_t * p, HostRange(gpa, data.size()));
  std::memcpy(p, data.data(), data.size());
  return Ok();
}

}  // namespace devpass::vmm
