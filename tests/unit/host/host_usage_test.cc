#include "host/host_usage.h"

#include <gtest/gtest.h>

#include "fake_host.h"

namespace devpass::host {
namespace {

using devpass::testing::FakeHost;

PciAddress A(std::string_view s) { return *PciAddress::Parse(s); }

std::vector<std::string> Details(const HostUsage& u, std::string_view bdf) {
  std::vector<std::string> out;
  for (const auto& d : u.DependenciesOf(A(bdf))) out.push_back(d.detail);
  return out;
}

TEST(HostUsageTest, EmptyHostDependsOnNothing) {
  FakeHost h;
  h.AddDevice({.bdf = "0000:00:03.0", .driver = "e1000e"});
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->all().empty());
}

TEST(HostUsageTest, BootVga) {
  FakeHost h;
  h.AddDevice({.bdf = "0000:00:02.0", .class_code = 0x030000, .boot_vga = 1});
  h.AddDevice({.bdf = "0000:01:00.0", .class_code = 0x030000, .boot_vga = 0});
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  EXPECT_EQ(Details(*u, "0000:00:02.0"),
            std::vector<std::string>{"boot GPU (boot_vga=1)"});
  EXPECT_EQ(u->DependenciesOf(A("0000:00:02.0"))[0].kind,
            HostDependency::Kind::kBootVga);
  EXPECT_TRUE(Details(*u, "0000:01:00.0").empty());
}

TEST(HostUsageTest, MountedPartitionResolvesToNvme) {
  FakeHost h;
  h.AddDevice(
      {.bdf = "0000:00:04.0", .class_code = 0x010802, .driver = "nvme"});
  std::string part =
      "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2";
  h.MakeDir(part);
  h.Symlink("sys/dev/block/259:2", part);
  h.WriteFile("proc/self/mountinfo",
              "22 1 259:2 / / rw shared:1 - ext4 /dev/nvme0n1p2 rw\n"
              "24 22 259:2 /home /home rw - ext4 /dev/nvme0n1p2 rw\n"
              "25 22 0:5 / /dev rw - devtmpfs udev rw\n");
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  EXPECT_EQ(Details(*u, "0000:00:04.0"),
            std::vector<std::string>{"/, /home are mounted from nvme0n1p2"});
  EXPECT_EQ(u->all().size(), 1u);
}

TEST(HostUsageTest, MultipathNvmeNamespaceResolvesToEveryController) {
  // Native NVMe multipath (QEMU 10's nvme, enterprise drives): the mounted
  // disk is a head under the subsystem, not under the PCI function; the
  // subsystem links its controllers, and each is a path to the namespace.
  FakeHost h;
  h.AddDevice(
      {.bdf = "0000:00:05.0", .class_code = 0x010802, .driver = "nvme"});
  h.AddDevice(
      {.bdf = "0000:00:06.0", .class_code = 0x010802, .driver = "nvme"});
  h.AddDevice(
      {.bdf = "0000:00:07.0", .class_code = 0x010802, .driver = "nvme"});
  const std::string subsys = "sys/devices/virtual/nvme-subsystem/nvme-subsys0";
  h.MakeDir("sys/devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0c0n1");
  h.MakeDir("sys/devices/pci0000:00/0000:00:06.0/nvme/nvme1/nvme0c1n1");
  h.Symlink(subsys + "/nvme0",
            "sys/devices/pci0000:00/0000:00:05.0/nvme/nvme0");
  h.Symlink(subsys + "/nvme1",
            "sys/devices/pci0000:00/0000:00:06.0/nvme/nvme1");
  h.MakeDir(subsys + "/nvme0n1/nvme0n1p1");
  h.WriteFile(subsys + "/nvme0n1/nvme0n1p1/partition", "1\n");
  h.MakeDir(subsys + "/nvme0n1/mq");  // not a controller
  h.Symlink("sys/dev/block/259:1", subsys + "/nvme0n1/nvme0n1p1");
  h.WriteFile("proc/self/mountinfo",
              "22 1 259:1 / /srv rw - ext4 /dev/nvme0n1p1 rw\n");
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  EXPECT_EQ(Details(*u, "0000:00:05.0"),
            std::vector<std::string>{"/srv is mounted from nvme0n1p1"});
  EXPECT_EQ(Details(*u, "0000:00:06.0"),
            std::vector<std::string>{"/srv is mounted from nvme0n1p1"});
  EXPECT_TRUE(Details(*u, "0000:00:07.0").empty());  // another subsystem
}

TEST(HostUsageTest, BtrfsAnonymousDeviceResolvesThroughTheMountSource) {
  FakeHost h;
  h.AddDevice(
      {.bdf = "0000:00:04.0", .class_code = 0x010802, .driver = "nvme"});
  std::string part =
      "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p3";
  h.MakeDir(part);
  h.WriteFile(part + "/dev", "259:3\n");
  h.Symlink("sys/class/block/nvme0n1p3", part);
  h.Symlink("sys/dev/block/259:3", part);
  h.WriteFile(
      "proc/self/mountinfo",
      "22 1 0:30 /@ / rw shared:1 - btrfs /dev/nvme0n1p3 rw,subvol=/@\n");
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  EXPECT_EQ(Details(*u, "0000:00:04.0"),
            std::vector<std::string>{"/ is mounted from nvme0n1p3"});
}

TEST(HostUsageTest, DeviceMapperFollowsSlavesToBothDisks) {
  FakeHost h;
  h.AddDevice(
      {.bdf = "0000:00:1f.2", .class_code = 0x010601, .driver = "ahci"});
  h.AddDevice(
      {.bdf = "0000:00:04.0", .class_code = 0x010802, .driver = "nvme"});
  std::string sda3 =
      "sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/"
      "block/sda/sda3";
  std::string nvme =
      "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p1";
  h.MakeDir(sda3);
  h.MakeDir(nvme);
  // md0 over both, dm-0 (LVM) over md0.
  h.MakeDir("sys/devices/virtual/block/md0");
  h.Symlink("sys/devices/virtual/block/md0/slaves/sda3", sda3);
  h.Symlink("sys/devices/virtual/block/md0/slaves/nvme0n1p1", nvme);
  h.MakeDir("sys/devices/virtual/block/dm-0");
  h.Symlink("sys/devices/virtual/block/dm-0/slaves/md0",
            "sys/devices/virtual/block/md0");
  h.Symlink("sys/dev/block/253:0", "sys/devices/virtual/block/dm-0");
  h.WriteFile("proc/self/mountinfo",
              "22 1 253:0 / /srv\\040data rw - xfs /dev/dm-0 rw\n");
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  EXPECT_EQ(Details(*u, "0000:00:1f.2"),
            std::vector<std::string>{"/srv data is mounted from dm-0"});
  EXPECT_EQ(Details(*u, "0000:00:04.0"),
            std::vector<std::string>{"/srv data is mounted from dm-0"});
}

TEST(HostUsageTest, SwapPartitionAndSwapFile) {
  FakeHost h;
  h.AddDevice(
      {.bdf = "0000:00:1f.2", .class_code = 0x010601, .driver = "ahci"});
  std::string sda3 =
      "sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/block/sda/sda3";
  h.MakeDir(sda3);
  h.WriteFile(sda3 + "/dev", "8:3\n");
  h.Symlink("sys/class/block/sda3", sda3);
  h.Symlink("sys/dev/block/8:3", sda3);
  h.WriteFile("proc/swaps",
              "Filename\tType\tSize\tUsed\tPriority\n"
              "/dev/sda3 partition 8388604 0 -2\n"
              "/swapfile file 1048572 0 -3\n");
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  ASSERT_EQ(Details(*u, "0000:00:1f.2"),
            std::vector<std::string>{"swap on sda3"});
  EXPECT_EQ(u->DependenciesOf(A("0000:00:1f.2"))[0].kind,
            HostDependency::Kind::kSwap);
}

TEST(HostUsageTest, DefaultRoutesThroughVirtioAndBond) {
  FakeHost h;
  h.AddDevice({.bdf = "0000:00:03.0", .driver = "virtio-pci"});
  h.AddDevice({.bdf = "0000:00:08.0", .driver = "e1000e"});
  h.AddDevice({.bdf = "0000:00:09.0", .driver = "e1000e"});
  h.MakeDir("sys/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0");
  h.Symlink("sys/class/net/eth0",
            "sys/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0");
  h.Symlink("sys/class/net/eth0/device",
            "sys/devices/pci0000:00/0000:00:03.0/virtio0");
  for (const char* n : {"eth1", "eth2"}) {
    std::string bdf =
        std::string(n) == "eth1" ? "0000:00:08.0" : "0000:00:09.0";
    std::string dir = "sys/devices/pci0000:00/" + bdf + "/net/" + n;
    h.MakeDir(dir);
    h.Symlink(std::string("sys/class/net/") + n, dir);
    h.Symlink(dir + "/device", "sys/devices/pci0000:00/" + bdf);
  }
  h.MakeDir("sys/devices/virtual/net/bond0");
  h.Symlink("sys/class/net/bond0", "sys/devices/virtual/net/bond0");
  h.Symlink("sys/devices/virtual/net/bond0/lower_eth1", "sys/class/net/eth1");
  h.Symlink("sys/devices/virtual/net/bond0/lower_eth2", "sys/class/net/eth2");
  h.WriteFile("proc/net/route",
              "Iface\tDestination\tGateway "
              "\tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
              "eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
              "eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n");
  h.WriteFile(
      "proc/net/ipv6_route",
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "fe800000000000000000000000000001 00000400 00000001 00000000 00000003 "
      "bond0\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 "
      "lo\n");
  auto u = HostUsage::Scan(h.root());
  ASSERT_TRUE(u);
  EXPECT_EQ(Details(*u, "0000:00:03.0"),
            std::vector<std::string>{"default route via eth0"});
  EXPECT_EQ(
      Details(*u, "0000:00:08.0"),
      std::vector<std::string>{"default route via bond0 (through eth1, eth2)"});
  EXPECT_EQ(
      Details(*u, "0000:00:09.0"),
      std::vector<std::string>{"default route via bond0 (through eth1, eth2)"});
  EXPECT_EQ(u->all().size(), 3u);
}

}  // namespace
}  // namespace devpass::host
