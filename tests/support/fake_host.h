#pragma once

// Builds a fake host tree in a temporary directory with the real kernel
// layout, so that discovery and hiding run against it unchanged:
//   sys/devices/pci0000:00/0000:00:1e.0/0000:01:00.0/   device directories
//   sys/bus/pci/devices/<bdf> -> ../../../devices/...      bus links
//   sys/bus/pci/drivers/<drv>/{bind,unbind,new_id,...}    drivers
//   <dev>/driver -> .../bus/pci/drivers/<drv>             binding
//   <dev>/iommu_group -> .../kernel/iommu_groups/N         groups
//   sys/kernel/iommu_groups/N/devices/<bdf> -> device
// plus config (binary), resource, driver_override, reset_method, boot_vga,
// numa_node, physfn/virtfnN, sriov_totalvfs. The tree is removed on
// destruction.

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "base/root.h"

namespace devpass::testing {

// One line of the sysfs `resource` file: start, end, flags.
struct FakeResource {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t flags = 0;
};

// Flags of `resource` lines (include/linux/ioport.h).
inline constexpr uint64_t kResourceIo = 0x100;
inline constexpr uint64_t kResourceMem = 0x200;
inline constexpr uint64_t kResourcePrefetch = 0x2000;
inline constexpr uint64_t kResourceMem64 = 0x100000;

struct FakeDevice {
  std::string bdf;  // "0000:01:00.0"
  uint16_t vendor = 0x8086;
  uint16_t device = 0x100e;
  uint32_t class_code = 0x020000;  // base/sub/prog-if
  uint8_t revision = 0;
  uint16_t subsystem_vendor = 0;
  uint16_t subsystem_device = 0;
  uint8_t header_type = 0;  // 1 = PCI-to-PCI bridge (bit 7 multifunction)
  std::string driver;       // "" = not bound
  int iommu_group = -1;     // -1 = no IOMMU (no iommu_group link)
  std::string parent;       // bridge bdf it sits behind; "" = root bus
  int numa_node = -1;
  int boot_vga = -1;                    // -1 = no boot_vga file, else 0/1
  std::string reset_method;             // "" = no reset_method file
  int sriov_totalvfs = -1;              // -1 = not an SR-IOV PF
  std::string physfn;                   // bdf of the PF when this is a VF
  std::vector<FakeResource> resources;  // up to 7 BARs + ROM; rest zero
  // Extra config bytes (capabilities) laid over the synthesized header;
  // offsets are absolute. Size grows to 4096 if any byte is past 255.
  std::vector<std::pair<uint16_t, std::vector<uint8_t>>> config_patches;
};

class FakeHost {
 public:
  FakeHost();
  ~FakeHost();
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  const Root& root() const { return root_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path Path(std::string_view rel) const {
    return root_.Path(rel);
  }

  // A driver directory with bind/unbind/new_id/remove_id and a module link.
  // `ids` is its ID table (vendor, device); 0xffff matches any device id.
  void AddDriver(const std::string& name,
                 std::vector<std::pair<uint16_t, uint16_t>> ids = {},
                 const std::string& module = "");
  // Adds the device (and its driver, group, parent links). The parent
  // bridge must have been added first.
  void AddDevice(const FakeDevice& dev);

  // Absolute path of the device directory under sys/devices.
  std::filesystem::path DeviceDir(const std::string& bdf) const;

  // Binds/unbinds directly (test setup; bypasses any simulation).
  void Bind(const std::string& bdf, const std::string& driver);
  void Unbind(const std::string& bdf);

  void WriteFile(std::string_view rel, std::string_view content);
  void Symlink(std::string_view rel_link, std::string_view rel_target);
  void MakeDir(std::string_view rel);

  // Standard host files with sensible defaults for a host ready for VFIO.
  void SetCmdline(std::string_view cmdline);  // proc/cmdline
  void SetCpuFlags(std::string_view flags);   // proc/cpuinfo
  void AddModule(std::string_view name);      // sys/module/<name>

 private:
  std::filesystem::path dir_;
  Root root_;
};

// Builds config-space patches for capabilities.
// Standard capability list (PCI Local Bus 3.0 §6.7): status bit 4 set,
// pointer at 0x34, each capability {id, next, body...}.
class CapChain {
 public:
  // Adds a standard capability at `offset` with `body` after the id/next
  // bytes. Links it after the previous one.
  CapChain& Add(uint8_t offset, uint8_t id, std::vector<uint8_t> body);
  // Adds a PCIe extended capability at `offset` (>= 0x100): 32-bit header
  // {id:16, version:4, next:12} then body.
  CapChain& AddExtended(uint16_t offset, uint16_t id, uint8_t version,
                        std::vector<uint8_t> body);
  // Applies to a device spec (sets status bit and pointers).
  void ApplyTo(FakeDevice* dev) const;

 private:
  std::vector<std::pair<uint8_t, std::vector<uint8_t>>> std_;
  std::vector<std::pair<uint16_t, std::vector<uint8_t>>> ext_;
};

// Little-endian helpers for capability bodies.
std::vector<uint8_t> Le16(uint16_t v);
std::vector<uint8_t> Le32(uint32_t v);
std::vector<uint8_t> Cat(std::initializer_list<std::vector<uint8_t>> parts);

}  // namespace devpass::testing
