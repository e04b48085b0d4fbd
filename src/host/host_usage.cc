#include "host/host_usage.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "base/fs.h"

namespace devpass::host {
namespace fs = std::filesystem;
namespace {

// Sysfs nests devices by topology, so the PCI function a block device or a
// network interface hangs off is the last path component that is a full
// PCI address ("0000:03:00.0"); anything after it (nvme/nvme0/nvme0n1,
// virtio0/net/eth0, host0/target0:0:0/...) belongs to that function.
std::optional<PciAddress> LastPciComponent(const fs::path& p) {
  std::optional<PciAddress> found;
  for (const auto& part : p) {
    std::string s = part.string();
    if (s.size() != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.') continue;
    if (auto a = PciAddress::Parse(s)) found = *a;
  }
  return found;
}

fs::path Canonical(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::canonical(p, ec);
  return ec ? fs::path() : c;
}

// The NVMe subsystem directory ("/sys/devices/virtual/nvme-subsystem/
// nvme-subsys0") a block device's sysfs path runs through, if any.
fs::path NvmeSubsystemOf(const fs::path& dir) {
  fs::path at;
  for (const auto& part : dir) {
    at /= part;
    if (part.string().rfind("nvme-subsys", 0) == 0 &&
        at.parent_path().filename() == "nvme-subsystem") {
      return at;
    }
  }
  return {};
}

// PCI devices under a block device's sysfs directory. A device-mapper, md or
// LVM volume is virtual: its PCI devices are those of its `slaves/`. A
// partition without PCI in its path (a partition of an md array) resolves
// through its parent disk. An NVMe namespace seen through native multipath
// (nvme_core.multipath=Y, Debian's default, for controllers that report
// multi-controller capability) is a virtual "head" disk under its
// subsystem; its controllers are the subsystem's `nvmeN` links
// (drivers/nvme/host/core.c, nvme_init_subsystem), every one a path to it.
void PciOfBlockDir(const fs::path& dir, int depth, std::set<PciAddress>* out) {
  if (dir.empty() || depth > 8) return;
  if (auto a = LastPciComponent(dir)) {
    out->insert(*a);
    return;
  }
  if (fs::path subsys = NvmeSubsystemOf(dir); !subsys.empty()) {
    for (const auto& e : ListDir(subsys)) {
      if (e.size() < 5 || e.rfind("nvme", 0) != 0 ||
          !std::all_of(e.begin() + 4, e.end(),
                       [](char c) { return c >= '0' && c <= '9'; })) {
        continue;
      }
      if (auto a = LastPciComponent(Canonical(subsys / e))) out->insert(*a);
    }
    return;
  }
  auto slaves = ListDir(dir / "slaves");
  for (const auto& s : slaves)
    PciOfBlockDir(Canonical(dir / "slaves" / s), depth + 1, out);
  if (slaves.empty() && Exists(dir / "partition")) {
    PciOfBlockDir(dir.parent_path(), depth + 1, out);
  }
}

std::set<PciAddress> PciOfDevNumber(const Root& root,
                                    const std::string& majmin) {
  std::set<PciAddress> out;
  PciOfBlockDir(Canonical(root.Sys("dev/block") / majmin), 0, &out);
  return out;
}

// A network interface's PCI devices: its `device` link, or for bonds,
// bridges and VLANs the devices of its lower interfaces.
void PciOfInterface(const Root& root, const std::string& ifname, int depth,
                    std::set<PciAddress>* out, std::set<std::string>* lowers) {
  if (depth > 8) return;
  fs::path dir = root.Sys("class/net") / ifname;
  if (Exists(dir / "device")) {
    if (auto a = LastPciComponent(Canonical(dir / "device"))) {
      out->insert(*a);
      if (depth > 0) lowers->insert(ifname);
    }
    return;
  }
  for (const auto& e : ListDir(dir)) {
    if (e.rfind("lower_", 0) != 0) continue;
    PciOfInterface(root, e.substr(6), depth + 1, out, lowers);
  }
}

// Undoes the octal escapes (\040 for space) of mountinfo and swaps.
std::string Unescape(std::string_view s) {
  auto octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) &&
        octal(s[i + 2]) && octal(s[i + 3])) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 +
                                      (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string> Lines(const fs::path& p) {
  std::vector<std::string> out;
  auto text = ReadFile(p);
  if (!text) return out;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string BlockName(const Root& root, const std::string& majmin) {
  return ReadLinkName(root.Sys("dev/block") / majmin).value_or(majmin);
}

// "/dev/sda3" -> "8:3"; understands /dev/mapper/<name> links and dm names.
std::optional<std::string> DevNumberOfNode(const Root& root,
                                           const std::string& node) {
  std::string name = fs::path(node).filename().string();
  auto dev_of = [&](const std::string& n) {
    return ReadTrimmed(root.Sys("class/block") / n / "dev");
  };
  if (auto d = dev_of(name)) return *d;
  if (auto target = ReadLinkName(root.Path(node))) {
    if (auto d = dev_of(*target)) return *d;
  }
  for (const auto& b : ListDir(root.Sys("class/block"))) {
    if (ReadTrimmed(root.Sys("class/block") / b / "dm/name").value_or("") ==
        name) {
      if (auto d = dev_of(b)) return *d;
    }
  }
  return std::nullopt;
}

std::string JoinLimited(const std::vector<std::string>& items, size_t limit) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < limit; ++i) {
    if (i) out += ", ";
    out += items[i];
  }
  if (items.size() > limit)
    out += fmt::format(" and {} more", items.size() - limit);
  return out;
}

}  // namespace

std::string_view HostDependencyKindName(HostDependency::Kind kind) {
  switch (kind) {
    case HostDependency::Kind::kBootVga:
      return "boot-vga";
    case HostDependency::Kind::kMountedFilesystem:
      return "mounted-filesystem";
    case HostDependency::Kind::kSwap:
      return "swap";
    case HostDependency::Kind::kDefaultRoute:
      return "default-route";
  }
  return "unknown";
}

void HostUsage::Add(const PciAddress& a, HostDependency::Kind kind,
                    std::string detail) {
  auto& v = deps_[a];
  for (const auto& d : v) {
    if (d.kind == kind && d.detail == detail) return;
  }
  v.push_back({kind, std::move(detail)});
}

void HostUsage::AddBootVga(const PciAddress& address) {
  Add(address, HostDependency::Kind::kBootVga, "boot GPU (boot_vga=1)");
}

Result<HostUsage> HostUsage::Scan(const Root& root) {
  return ScanImpl(root, true);
}

Result<HostUsage> HostUsage::ScanWithoutBootVga(const Root& root) {
  return ScanImpl(root, false);
}

Result<HostUsage> HostUsage::ScanImpl(const Root& root, bool read_boot_vga) {
  HostUsage usage;
  auto add = [&](const PciAddress& a, HostDependency::Kind kind,
                 std::string detail) { usage.Add(a, kind, std::move(detail)); };

  // The firmware's console: taking it away blanks the host's screen.
  for (const auto& name : read_boot_vga ? ListDir(root.Sys("bus/pci/devices"))
                                        : std::vector<std::string>{}) {
    auto a = PciAddress::Parse(name);
    if (!a) continue;
    auto v = ReadTrimmed(root.Sys("bus/pci/devices") / name / "boot_vga");
    if (v && *v == "1") usage.AddBootVga(*a);
  }

  // Mounted file systems: mountinfo field 3 is the st_dev "major:minor",
  // field 5 the mount point. Pseudo file systems (major 0) have no
  // sys/dev/block entry and drop out.
  std::map<std::string, std::vector<std::string>> mounts_by_dev;
  std::vector<std::string> dev_order;
  for (const auto& line : Lines(root.Proc("self/mountinfo"))) {
    auto f = SplitWords(line);
    if (f.size() < 5) continue;
    std::string majmin = f[2];
    if (!Exists(root.Sys("dev/block") / majmin)) {
      // btrfs (and other multi-device file systems) report an anonymous
      // st_dev; the mount source after the " - <fstype>" separator names
      // the block device instead.
      auto sep = std::find(f.begin(), f.end(), "-");
      if (sep == f.end() || sep + 2 >= f.end() ||
          (sep + 2)->rfind("/dev/", 0) != 0) {
        continue;
      }
      auto from_source = DevNumberOfNode(root, Unescape(*(sep + 2)));
      if (!from_source || !Exists(root.Sys("dev/block") / *from_source))
        continue;
      majmin = *from_source;
    }
    if (!mounts_by_dev.count(majmin)) dev_order.push_back(majmin);
    mounts_by_dev[majmin].push_back(Unescape(f[4]));
  }
  for (const auto& majmin : dev_order) {
    const auto& points = mounts_by_dev[majmin];
    std::string detail =
        fmt::format("{} {} mounted from {}", JoinLimited(points, 3),
                    points.size() == 1 ? "is" : "are", BlockName(root, majmin));
    for (const auto& a : PciOfDevNumber(root, majmin)) {
      add(a, HostDependency::Kind::kMountedFilesystem, detail);
    }
  }

  // Active swap areas. A swap file lives on a mounted file system, which is
  // already covered above.
  auto swaps = Lines(root.Proc("swaps"));
  for (size_t i = 1; i < swaps.size(); ++i) {
    auto f = SplitWords(swaps[i]);
    if (f.size() < 2 || f[1] == "file") continue;
    std::string node = Unescape(f[0]);
    auto majmin = DevNumberOfNode(root, node);
    if (!majmin) continue;
    std::string detail = fmt::format("swap on {}", BlockName(root, *majmin));
    for (const auto& a : PciOfDevNumber(root, *majmin)) {
      add(a, HostDependency::Kind::kSwap, detail);
    }
  }

  // Interfaces with a default route, IPv4 then IPv6.
  std::vector<std::string> route_ifs;
  auto v4 = Lines(root.Proc("net/route"));
  for (size_t i = 1; i < v4.size(); ++i) {
    auto f = SplitWords(v4[i]);
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ...
    if (f.size() < 8 || f[1] != "00000000" || f[7] != "00000000") continue;
    route_ifs.push_back(f[0]);
  }
  for (const auto& line : Lines(root.Proc("net/ipv6_route"))) {
    // dest prefix src src_prefix next_hop metric refcnt use flags iface
    auto f = SplitWords(line);
    if (f.size() < 10 || f[0] != std::string(32, '0') || f[1] != "00") continue;
    unsigned long flags = std::strtoul(f[8].c_str(), nullptr, 16);
    if (flags & 0x0200)
      continue;  // RTF_REJECT: the kernel's unreachable default
    route_ifs.push_back(f[9]);
  }
  std::set<std::string> seen;
  for (const auto& ifname : route_ifs) {
    if (!seen.insert(ifname).second || ifname == "lo") continue;
    std::set<PciAddress> pci;
    std::set<std::string> lowers;
    PciOfInterface(root, ifname, 0, &pci, &lowers);
    std::string detail = fmt::format("default route via {}", ifname);
    if (!lowers.empty()) {
      detail += fmt::format(" (through {})",
                            JoinLimited({lowers.begin(), lowers.end()}, 4));
    }
    for (const auto& a : pci)
      add(a, HostDependency::Kind::kDefaultRoute, detail);
  }
  return usage;
}

const std::vector<HostDependency>& HostUsage::DependenciesOf(
    const PciAddress& address) const {
  static const std::vector<HostDependency> kNone;
  auto it = deps_.find(address);
  return it == deps_.end() ? kNone : it->second;
}

}  // namespace devpass::host
