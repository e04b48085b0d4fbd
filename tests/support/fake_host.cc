#include "fake_host.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace devpass::testing {
namespace fs = std::filesystem;

namespace {

fs::path MakeTempDir() {
  std::string tmpl =
      (fs::temp_directory_path() / "devpass-fake-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

void Put(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// Symlink with a relative target, as sysfs has them.
void LinkRel(const fs::path& link, const fs::path& target) {
  fs::create_directories(link.parent_path());
  std::error_code ec;
  fs::remove(link, ec);
  fs::create_symlink(fs::relative(target, link.parent_path()), link);
}

}  // namespace

FakeHost::FakeHost() : dir_(MakeTempDir()), root_(dir_) {
  for (const char* d :
       {"sys/bus/pci/devices", "sys/bus/pci/drivers", "sys/kernel/iommu_groups",
        "sys/devices/pci0000:00", "sys/module", "sys/class/net",
        "sys/class/block", "sys/dev/block", "dev", "proc", "etc", "run",
        "var/lib"}) {
    fs::create_directories(dir_ / d);
  }
  Put(dir_ / "sys/bus/pci/drivers_probe", "");
  Put(dir_ / "sys/bus/pci/drivers_autoprobe", "1\n");
  Put(dir_ / "sys/bus/pci/rescan", "");
  Put(dir_ / "proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet\n");
  Put(dir_ / "proc/mounts", "");
  Put(dir_ / "proc/self/mountinfo", "");
  Put(dir_ / "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
  Put(dir_ / "proc/net/route",
      "Iface\tDestination\tGateway "
      "\tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n");
  Put(dir_ / "proc/modules", "");
}

FakeHost::~FakeHost() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void FakeHost::AddDriver(const std::string& name,
                         std::vector<std::pair<uint16_t, uint16_t>> ids,
                         const std::string& module) {
  fs::path d = dir_ / "sys/bus/pci/drivers" / name;
  fs::create_directories(d);
  for (const char* f : {"bind", "unbind", "new_id", "remove_id", "uevent"}) {
    Put(d / f, "");
  }
  std::string ids_text;
  for (auto [v, dv] : ids) ids_text += fmt::format("{:04x} {:04x}\n", v, dv);
  // Not a kernel file: the ID table the kernel simulation matches against.
  Put(d / ".fake_ids", ids_text);
  std::string mod = module.empty() ? name : module;
  for (char& c : mod) {
    if (c == '-') c = '_';
  }
  fs::create_directories(dir_ / "sys/module" / mod / "drivers");
  LinkRel(d / "module", dir_ / "sys/module" / mod);
}

fs::path FakeHost::DeviceDir(const std::string& bdf) const {
  auto link = dir_ / "sys/bus/pci/devices" / bdf;
  std::error_code ec;
  auto target = fs::read_symlink(link, ec);
  if (ec) throw std::runtime_error("no fake device " + bdf);
  return (link.parent_path() / target).lexically_normal();
}

void FakeHost::AddDevice(const FakeDevice& d) {
  fs::path parent_dir =
      d.parent.empty()
          ? dir_ / fmt::format("sys/devices/pci{}", d.bdf.substr(0, 7))
          : DeviceDir(d.parent);
  fs::path dev = parent_dir / d.bdf;
  fs::create_directories(dev);
  LinkRel(dir_ / "sys/bus/pci/devices" / d.bdf, dev);

  Put(dev / "vendor", fmt::format("0x{:04x}\n", d.vendor));
  Put(dev / "device", fmt::format("0x{:04x}\n", d.device));
  Put(dev / "class", fmt::format("0x{:06x}\n", d.class_code));
  Put(dev / "revision", fmt::format("0x{:02x}\n", d.revision));
  Put(dev / "subsystem_vendor", fmt::format("0x{:04x}\n", d.subsystem_vendor));
  Put(dev / "subsystem_device", fmt::format("0x{:04x}\n", d.subsystem_device));
  Put(dev / "driver_override", "(null)\n");
  Put(dev / "numa_node", fmt::format("{}\n", d.numa_node));
  Put(dev / "enable", "1\n");
  Put(dev / "irq", "0\n");
  if (d.boot_vga >= 0) Put(dev / "boot_vga", fmt::format("{}\n", d.boot_vga));
  if (!d.reset_method.empty()) Put(dev / "reset_method", d.reset_method + "\n");
  if (d.sriov_totalvfs >= 0) {
    Put(dev / "sriov_totalvfs", fmt::format("{}\n", d.sriov_totalvfs));
    Put(dev / "sriov_numvfs", "0\n");
  }
  if (!d.physfn.empty()) {
    fs::path pf = DeviceDir(d.physfn);
    LinkRel(dev / "physfn", pf);
    int n = 0;
    while (fs::is_symlink(pf / fmt::format("virtfn{}", n))) ++n;
    LinkRel(pf / fmt::format("virtfn{}", n), dev);
    Put(pf / "sriov_numvfs", fmt::format("{}\n", n + 1));
  }

  // resource: 13 lines (6 BARs, ROM, bridge windows) of start end flags.
  std::string res;
  for (size_t i = 0; i < 13; ++i) {
    FakeResource r = i < d.resources.size() ? d.resources[i] : FakeResource{};
    res +=
        fmt::format("0x{:016x} 0x{:016x} 0x{:016x}\n", r.start, r.end, r.flags);
  }
  Put(dev / "resource", res);

  // Config space: a type 0/1 header synthesized from the fields above.
  size_t size = 256;
  for (const auto& [off, bytes] : d.config_patches) {
    if (off + bytes.size() > 256) size = 4096;
  }
  std::string cfg(size, '\0');
  auto put16 = [&](size_t off, uint16_t v) {
    cfg[off] = static_cast<char>(v & 0xff);
    cfg[off + 1] = static_cast<char>(v >> 8);
  };
  put16(0x00, d.vendor);
  put16(0x02, d.device);
  cfg[0x08] = static_cast<char>(d.revision);
  cfg[0x09] = static_cast<char>(d.class_code & 0xff);
  cfg[0x0a] = static_cast<char>((d.class_code >> 8) & 0xff);
  cfg[0x0b] = static_cast<char>((d.class_code >> 16) & 0xff);
  cfg[0x0e] = static_cast<char>(d.header_type);
  if ((d.header_type & 0x7f) == 0) {
    put16(0x2c, d.subsystem_vendor);
    put16(0x2e, d.subsystem_device);
  }
  for (const auto& [off, bytes] : d.config_patches) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      cfg[off + i] = static_cast<char>(bytes[i]);
    }
  }
  Put(dev / "config", cfg);

  if (d.iommu_group >= 0) {
    fs::path g =
        dir_ / "sys/kernel/iommu_groups" / std::to_string(d.iommu_group);
    fs::create_directories(g / "devices");
    if (!fs::exists(g / "reserved_regions")) {
      Put(g / "reserved_regions",
          "0x00000000fee00000 0x00000000feefffff msi\n");
    }
    if (!fs::exists(g / "type")) Put(g / "type", "DMA\n");
    LinkRel(g / "devices" / d.bdf, dev);
    LinkRel(dev / "iommu_group", g);
  }
  if (!d.driver.empty()) Bind(d.bdf, d.driver);
}

void FakeHost::Bind(const std::string& bdf, const std::string& driver) {
  fs::path dev = DeviceDir(bdf);
  fs::path drv = dir_ / "sys/bus/pci/drivers" / driver;
  if (!fs::exists(drv)) AddDriver(driver);
  LinkRel(dev / "driver", drv);
  LinkRel(drv / bdf, dev);
}

void FakeHost::Unbind(const std::string& bdf) {
  fs::path dev = DeviceDir(bdf);
  std::error_code ec;
  auto target = fs::read_symlink(dev / "driver", ec);
  if (ec) return;
  fs::path drv = (dev / target).lexically_normal();
  fs::remove(drv / bdf, ec);
  fs::remove(dev / "driver", ec);
}

void FakeHost::WriteFile(std::string_view rel, std::string_view content) {
  Put(root_.Path(rel), content);
}

void FakeHost::Symlink(std::string_view rel_link, std::string_view rel_target) {
  LinkRel(root_.Path(rel_link), root_.Path(rel_target));
}

void FakeHost::MakeDir(std::string_view rel) {
  fs::create_directories(root_.Path(rel));
}

void FakeHost::SetCmdline(std::string_view cmdline) {
  Put(dir_ / "proc/cmdline", std::string(cmdline) + "\n");
}

void FakeHost::SetCpuFlags(std::string_view flags) {
  Put(dir_ / "proc/cpuinfo",
      fmt::format(
          "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: {}\n\n",
          flags));
}

void FakeHost::AddModule(std::string_view name) {
  fs::create_directories(dir_ / "sys/module" / std::string(name));
}

CapChain& CapChain::Add(uint8_t offset, uint8_t id, std::vector<uint8_t> body) {
  std::vector<uint8_t> bytes{id, 0};
  bytes.insert(bytes.end(), body.begin(), body.end());
  if (!std_.empty()) std_.back().second[1] = offset;
  std_.emplace_back(offset, std::move(bytes));
  return *this;
}

CapChain& CapChain::AddExtended(uint16_t offset, uint16_t id, uint8_t version,
                                std::vector<uint8_t> body) {
  std::vector<uint8_t> bytes = Le32(
      static_cast<uint32_t>(id) | (static_cast<uint32_t>(version & 0xf) << 16));
  bytes.insert(bytes.end(), body.begin(), body.end());
  if (!ext_.empty()) {
    auto& prev = ext_.back().second;
    uint32_t hdr = prev[0] | (prev[1] << 8) | (prev[2] << 16) |
                   (static_cast<uint32_t>(prev[3]) << 24);
    hdr = (hdr & 0x000fffffu) | (static_cast<uint32_t>(offset) << 20);
    auto le = Le32(hdr);
    std::copy(le.begin(), le.end(), prev.begin());
  }
  ext_.emplace_back(offset, std::move(bytes));
  return *this;
}

void CapChain::ApplyTo(FakeDevice* dev) const {
  if (!std_.empty()) {
    // Status register (0x06) bit 4: capabilities list present.
    dev->config_patches.push_back({0x06, {0x10, 0x00}});
    dev->config_patches.push_back({0x34, {std_.front().first}});
    for (const auto& [off, bytes] : std_)
      dev->config_patches.push_back({off, bytes});
  }
  for (const auto& [off, bytes] : ext_)
    dev->config_patches.push_back({off, bytes});
}

std::vector<uint8_t> Le16(uint16_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
}

std::vector<uint8_t> Le32(uint32_t v) {
  return {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v >> 16), static_cast<uint8_t>(v >> 24)};
}

std::vector<uint8_t> Cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace devpass::testing
