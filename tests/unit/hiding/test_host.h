#pragma once

// A small fake machine for the hiding tests, in the shape of the lab VM:
//   00:00.0 host bridge                      group 0
//   00:01.0 PCIe root port (pcieport)        group 1
//   00:02.0 boot VGA, bochs-drm              group 2
//   00:03.0 NIC, e1000e                      group 3
//   00:04.0 NVMe holding /, nvme             group 4
//   00:05.0 edu, unbound                     group 6
//   00:06.0 NIC with no IOMMU group, e1000e
//   01:00.0 GPU (nouveau) + 01:00.1 audio (snd_hda_intel) behind 00:01.0,
//           both in group 5
// vfio-pci is loaded unless told otherwise; pci-stub and pciback are not.

#include <memory>

#include "fake_host.h"
#include "hiding/hider.h"
#include "kernel_sim.h"

namespace devpass::testing {

inline constexpr char kNic[] = "0000:00:03.0";
inline constexpr char kNvme[] = "0000:00:04.0";
inline constexpr char kVga[] = "0000:00:02.0";
inline constexpr char kEdu[] = "0000:00:05.0";
inline constexpr char kNoGroup[] = "0000:00:06.0";
inline constexpr char kGpu[] = "0000:01:00.0";
inline constexpr char kAudio[] = "0000:01:00.1";
inline constexpr char kRootPort[] = "0000:00:01.0";

inline void BuildTestHost(FakeHost& h, bool vfio_loaded = true) {
  h.AddDriver("e1000e", {{0x8086, 0x10d3}});
  h.AddDriver("nvme", {{0x1b36, 0x0010}});
  h.AddDriver("bochs-drm", {{0x1234, 0x1111}});
  h.AddDriver("nouveau", {{0x10de, 0xffff}});
  h.AddDriver("snd_hda_intel", {{0x10de, 0x10f0}});
  h.AddDriver("pcieport", {});
  if (vfio_loaded) h.AddDriver("vfio-pci", {}, "vfio_pci");
  h.AddDevice({.bdf = "0000:00:00.0",
               .vendor = 0x8086,
               .device = 0x29c0,
               .class_code = 0x060000,
               .iommu_group = 0});
  h.AddDevice({.bdf = kRootPort,
               .vendor = 0x1b36,
               .device = 0x000c,
               .class_code = 0x060400,
               .header_type = 1,
               .driver = "pcieport",
               .iommu_group = 1});
  h.AddDevice({.bdf = kVga,
               .vendor = 0x1234,
               .device = 0x1111,
               .class_code = 0x030000,
               .driver = "bochs-drm",
               .iommu_group = 2,
               .boot_vga = 1});
  h.AddDevice({.bdf = kNic,
               .vendor = 0x8086,
               .device = 0x10d3,
               .driver = "e1000e",
               .iommu_group = 3});
  h.AddDevice({.bdf = kNvme,
               .vendor = 0x1b36,
               .device = 0x0010,
               .class_code = 0x010802,
               .driver = "nvme",
               .iommu_group = 4});
  h.AddDevice({.bdf = kEdu,
               .vendor = 0x1234,
               .device = 0x11e8,
               .class_code = 0x00ff00,
               .iommu_group = 6});
  h.AddDevice({.bdf = kNoGroup,
               .vendor = 0x8086,
               .device = 0x10d3,
               .driver = "e1000e"});
  h.AddDevice({.bdf = kGpu,
               .vendor = 0x10de,
               .device = 0x1c82,
               .class_code = 0x030000,
               .driver = "nouveau",
               .iommu_group = 5,
               .parent = kRootPort,
               .boot_vga = 0});
  h.AddDevice({.bdf = kAudio,
               .vendor = 0x10de,
               .device = 0x10f0,
               .class_code = 0x040300,
               .driver = "snd_hda_intel",
               .iommu_group = 5,
               .parent = kRootPort});
  // / is mounted from the NVMe's second partition.
  h.MakeDir("sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2");
  h.WriteFile(
      "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2/"
      "partition",
      "2\n");
  h.Symlink("sys/dev/block/259:2",
            "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2");
  h.WriteFile("proc/self/mountinfo",
              "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
              "23 22 0:21 / /proc rw - proc proc rw\n");
}

// A Hider on the simulated kernel with short waits, for tests.
inline hiding::HiderConfig TestConfig() {
  hiding::HiderConfig c;
  c.devpass_binary = "/usr/local/bin/devpass";
  c.lock_timeout = std::chrono::milliseconds(200);
  c.repair_lock_timeout = std::chrono::milliseconds(200);
  c.vfio_wait = std::chrono::milliseconds(50);
  return c;
}

}  // namespace devpass::testing
