#include "host/pci_scan.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <string_view>
#include <thread>

#include "base/fs.h"
#include "host/pci_regs.h"

namespace devpass::host {
namespace {

// PCI_CLASS_DISPLAY_VGA and PCI_CLASS_NOT_DEFINED_VGA
// (include/linux/pci_ids.h).
constexpr uint16_t kClassDisplayVga = 0x0300;
constexpr uint16_t kClassNotDefinedVga = 0x0001;
// Above this many devices the scan is split over threads: each device costs
// a dozen syscalls that mostly wait on the kernel's path lookup, and they
// are independent.
constexpr size_t kParallelScanThreshold = 256;
constexpr unsigned kMaxScanThreads = 4;
// The first 64 bytes are the predefined header, and the part of config space
// that sysfs lets unprivileged users read.
constexpr size_t kHeaderBytes = 64;

// Reads a small sysfs attribute relative to `dirfd`. nullopt when absent or
// unreadable; trailing whitespace removed.
std::optional<std::string> ReadAttrAt(int dirfd, const char* name) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[256];
  ssize_t n;
  do {
    n = ::pread(fd, buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n < 0) return std::nullopt;
  std::string_view s(buf, static_cast<size_t>(n));
  while (!s.empty() &&
         (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

// "0x8086", "12", "-1" as the kernel prints them.
std::optional<int64_t> ParseNumber(std::string_view s) {
  bool neg = false;
  if (!s.empty() && s.front() == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return neg ? -v : v;
}

std::optional<int64_t> ReadNumberAt(int dirfd, const char* name) {
  auto text = ReadAttrAt(dirfd, name);
  if (!text) return std::nullopt;
  return ParseNumber(*text);
}

// Last path component of a symlink relative to `dirfd`, nullopt when the
// link does not exist ("driver" -> "../../../bus/pci/drivers/e1000e").
std::optional<std::string> LinkNameAt(int dirfd, const char* name) {
  char buf[512];
  ssize_t n = ::readlinkat(dirfd, name, buf, sizeof buf);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) return std::nullopt;
  std::string_view s(buf, static_cast<size_t>(n));
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  size_t slash = s.rfind('/');
  if (slash != std::string_view::npos) s.remove_prefix(slash + 1);
  return std::string(s);
}

std::optional<PciAddress> LinkAddressAt(int dirfd, const char* name) {
  auto link = LinkNameAt(dirfd, name);
  if (!link) return std::nullopt;
  auto addr = PciAddress::Parse(*link);
  if (!addr) return std::nullopt;
  return *addr;
}

uint16_t Le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

// Ids from the sysfs attributes, for when config space does not carry them:
// an SR-IOV VF's Vendor/Device ID registers read 0xffff (PCIe Base Spec,
// SR-IOV §9.3.4.1) on kernels that do not emulate them, and a short config
// read means we cannot trust the header.
void ReadIdsFromAttributes(int devfd, PciDeviceInfo* d, bool all) {
  if (auto v = ReadNumberAt(devfd, "vendor"))
    d->vendor_id = static_cast<uint16_t>(*v);
  if (auto v = ReadNumberAt(devfd, "device"))
    d->device_id = static_cast<uint16_t>(*v);
  if (!all) return;
  if (auto v = ReadNumberAt(devfd, "class"))
    d->class_code = static_cast<uint32_t>(*v) & 0xffffff;
  if (auto v = ReadNumberAt(devfd, "revision"))
    d->revision = static_cast<uint8_t>(*v);
  if (auto v = ReadNumberAt(devfd, "subsystem_vendor")) {
    d->subsystem_vendor_id = static_cast<uint16_t>(*v);
  }
  if (auto v = ReadNumberAt(devfd, "subsystem_device")) {
    d->subsystem_device_id = static_cast<uint16_t>(*v);
  }
}

void ReadHeader(int devfd, PciDeviceInfo* d) {
  uint8_t cfg[kHeaderBytes] = {};
  ssize_t n = -1;
  int fd = ::openat(devfd, "config", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    do {
      n = ::pread(fd, cfg, sizeof cfg, 0);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
  }
  if (n < static_cast<ssize_t>(kHeaderBytes)) {
    if (n > static_cast<ssize_t>(pci_regs::kHeaderType))
      d->header_type = cfg[pci_regs::kHeaderType];
    ReadIdsFromAttributes(devfd, d, /*all=*/true);
    return;
  }
  d->vendor_id = Le16(cfg + pci_regs::kVendorId);
  d->device_id = Le16(cfg + pci_regs::kDeviceId);
  d->revision = cfg[pci_regs::kRevision];
  d->class_code = static_cast<uint32_t>(cfg[pci_regs::kClassProgIf]) |
                  static_cast<uint32_t>(cfg[pci_regs::kClassProgIf + 1]) << 8 |
                  static_cast<uint32_t>(cfg[pci_regs::kClassProgIf + 2]) << 16;
  d->header_type = cfg[pci_regs::kHeaderType];
  switch (d->layout()) {
    case HeaderLayout::kNormal:
      d->subsystem_vendor_id = Le16(cfg + pci_regs::kSubsystemVendorId);
      d->subsystem_device_id = Le16(cfg + pci_regs::kSubsystemId);
      break;
    case HeaderLayout::kCardBus:
      // CardBus keeps them at 0x40, past the 64 bytes read; use sysfs.
      if (auto v = ReadNumberAt(devfd, "subsystem_vendor")) {
        d->subsystem_vendor_id = static_cast<uint16_t>(*v);
      }
      if (auto v = ReadNumberAt(devfd, "subsystem_device")) {
        d->subsystem_device_id = static_cast<uint16_t>(*v);
      }
      break;
    default:
      break;  // bridges have no subsystem ids in the header
  }
  if (d->vendor_id == 0xffff) ReadIdsFromAttributes(devfd, d, /*all=*/false);
}

void ReadSriov(int devfd, PciDeviceInfo* d) {
  d->physfn = LinkAddressAt(devfd, "physfn");
  auto total = ReadNumberAt(devfd, "sriov_totalvfs");
  if (!total) return;  // not a PF: skip the virtfn probes
  d->sriov_totalvfs = static_cast<int>(*total);
  if (auto num = ReadNumberAt(devfd, "sriov_numvfs")) {
    d->sriov_numvfs = static_cast<int>(*num);
  }
  // virtfn0..N-1 are contiguous; stop at the first missing one. The bound
  // guards against a corrupt tree (TotalVFs is a 16-bit register).
  char name[32];
  for (int i = 0; i < 65536; ++i) {
    std::snprintf(name, sizeof name, "virtfn%d", i);
    auto vf = LinkAddressAt(devfd, name);
    if (!vf) break;
    d->virtfns.push_back(*vf);
  }
}

// Reads one device whose directory is `name` under `devices_fd`. nullopt
// when it vanished.
std::optional<PciDeviceInfo> ReadDevice(int devices_fd, const char* name,
                                        const PciAddress& address) {
  int devfd = ::openat(devices_fd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (devfd < 0) return std::nullopt;
  PciDeviceInfo d;
  d.address = address;
  ReadHeader(devfd, &d);
  d.driver = LinkNameAt(devfd, "driver").value_or("");
  if (auto group = LinkNameAt(devfd, "iommu_group")) {
    if (auto n = ParseNumber(*group); n && *n >= 0)
      d.iommu_group = static_cast<int>(*n);
  }
  if (auto ovr = ReadAttrAt(devfd, "driver_override");
      ovr && *ovr != "(null)") {
    d.driver_override = *ovr;
  }
  if (auto numa = ReadNumberAt(devfd, "numa_node"))
    d.numa_node = static_cast<int>(*numa);
  // The kernel creates boot_vga only for VGA devices (pci_is_vga(): class
  // 0x0300, or 0x0001 for pre-2.0 VGA); skip the lookup for the rest.
  if (d.class_id() == kClassDisplayVga || d.class_id() == kClassNotDefinedVga) {
    if (auto vga = ReadAttrAt(devfd, "boot_vga")) d.boot_vga = (*vga == "1");
  }
  ReadSriov(devfd, &d);
  ::close(devfd);
  return d;
}

}  // namespace

HeaderLayout PciDeviceInfo::layout() const {
  switch (header_type & 0x7f) {
    case 0:
      return HeaderLayout::kNormal;
    case 1:
      return HeaderLayout::kBridge;
    case 2:
      return HeaderLayout::kCardBus;
    default:
      return HeaderLayout::kUnknown;
  }
}

bool PciDeviceInfo::is_bridge() const {
  return layout() == HeaderLayout::kBridge ||
         layout() == HeaderLayout::kCardBus || class_id() == kClassBridgePci;
}

void ComputeGroupMembers(std::vector<PciDeviceInfo>* devices) {
  std::map<int, std::vector<PciAddress>> groups;
  for (const auto& d : *devices) {
    if (d.iommu_group) groups[*d.iommu_group].push_back(d.address);
  }
  for (auto& members : groups)
    std::sort(members.second.begin(), members.second.end());
  for (auto& d : *devices) {
    d.group_members.clear();
    if (!d.iommu_group) continue;
    for (const auto& a : groups[*d.iommu_group]) {
      if (a != d.address) d.group_members.push_back(a);
    }
  }
}

Result<std::vector<PciDeviceInfo>> ScanPciDevices(const Root& root) {
  auto dir = root.Sys("bus/pci/devices");
  UniqueFd devices_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!devices_fd.valid()) {
    int err = errno;
    return ErrnoError(err,
                      fmt::format("cannot read the PCI device list {}; is "
                                  "sysfs mounted (mount -t sysfs sysfs /sys)?",
                                  root.Display(dir)));
  }
  // fdopendir takes ownership of its fd; keep ours for openat.
  DIR* dirp = ::fdopendir(::dup(devices_fd.get()));
  if (dirp == nullptr) {
    int err = errno;
    return ErrnoError(err, fmt::format("cannot list {}", root.Display(dir)));
  }
  std::vector<std::pair<PciAddress, std::string>> names;
  while (struct dirent* e = ::readdir(dirp)) {
    if (e->d_name[0] == '.') continue;
    auto addr = PciAddress::Parse(e->d_name);
    if (addr) names.emplace_back(*addr, e->d_name);
  }
  ::closedir(dirp);
  std::sort(names.begin(), names.end());

  std::vector<std::optional<PciDeviceInfo>> read(names.size());
  auto work = [&](size_t first, size_t step) {
    for (size_t i = first; i < names.size(); i += step) {
      read[i] =
          ReadDevice(devices_fd.get(), names[i].second.c_str(), names[i].first);
    }
  };
  unsigned threads = std::min(std::max(std::thread::hardware_concurrency(), 1u),
                              kMaxScanThreads);
  if (names.size() < kParallelScanThreshold || threads == 1) {
    work(0, 1);
  } else {
    // Interleaved slices: neighbouring devices cost about the same, so every
    // thread gets an even share. Each writes only its own slots.
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t, threads);
    work(0, threads);
    for (auto& th : pool) th.join();
  }
  std::vector<PciDeviceInfo> out;
  out.reserve(names.size());
  for (auto& d : read) {
    if (d) out.push_back(std::move(*d));
  }
  ComputeGroupMembers(&out);
  return out;
}

Result<PciDeviceInfo> ScanPciDevice(const Root& root,
                                    const PciAddress& address) {
  auto dir = root.Sys("bus/pci/devices");
  UniqueFd devices_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::optional<PciDeviceInfo> d;
  if (devices_fd.valid()) {
    d = ReadDevice(devices_fd.get(), address.ToString().c_str(), address);
  }
  if (!d) {
    return MakeError(
        ErrorCode::kNotFound,
        fmt::format("no PCI device {} under {}; run 'devpass list' "
                    "to see the devices",
                    address.ToString(), root.Display(dir)));
  }
  if (d->iommu_group) {
    auto group_dir = root.Sys(
        fmt::format("kernel/iommu_groups/{}/devices", *d->iommu_group));
    for (const auto& name : ListDir(group_dir)) {
      auto member = PciAddress::Parse(name);
      if (member && *member != address) d->group_members.push_back(*member);
    }
    std::sort(d->group_members.begin(), d->group_members.end());
  }
  return std::move(*d);
}

}  // namespace devpass::host
