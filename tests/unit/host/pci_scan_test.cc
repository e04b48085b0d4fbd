#include "host/pci_scan.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "fake_host.h"

namespace devpass::host {
namespace {

using testing::FakeDevice;
using testing::FakeHost;

PciAddress Addr(const char* s) { return *PciAddress::Parse(s); }

const PciDeviceInfo* Find(const std::vector<PciDeviceInfo>& devs,
                          const char* bdf) {
  for (const auto& d : devs) {
    if (d.address == Addr(bdf)) return &d;
  }
  return nullptr;
}

TEST(PciScanTest, ReadsIdsClassDriverGroupAndAttributes) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:00:02.0",
                  .vendor = 0x8086,
                  .device = 0x3e92,
                  .class_code = 0x030000,
                  .revision = 0x02,
                  .subsystem_vendor = 0x1028,
                  .subsystem_device = 0x0869,
                  .driver = "i915",
                  .iommu_group = 1,
                  .numa_node = 0,
                  .boot_vga = 1});
  host.AddDevice({.bdf = "0000:00:1f.6",
                  .vendor = 0x8086,
                  .device = 0x15bb,
                  .class_code = 0x020000,
                  .driver = "e1000e",
                  .iommu_group = 2,
                  .numa_node = -1,
                  .boot_vga = 0});
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs) << devs.error().ToString();
  ASSERT_EQ(devs->size(), 2u);
  const auto& gpu = (*devs)[0];
  EXPECT_EQ(gpu.address, Addr("0000:00:02.0"));
  EXPECT_EQ(gpu.vendor_id, 0x8086);
  EXPECT_EQ(gpu.device_id, 0x3e92);
  EXPECT_EQ(gpu.class_code, 0x030000u);
  EXPECT_EQ(gpu.class_id(), 0x0300);
  EXPECT_EQ(gpu.revision, 0x02);
  EXPECT_EQ(gpu.subsystem_vendor_id, 0x1028);
  EXPECT_EQ(gpu.subsystem_device_id, 0x0869);
  EXPECT_EQ(gpu.driver, "i915");
  EXPECT_EQ(gpu.iommu_group, 1);
  EXPECT_EQ(gpu.numa_node, 0);
  EXPECT_TRUE(gpu.boot_vga);
  EXPECT_FALSE(gpu.is_bridge());
  const auto& nic = (*devs)[1];
  EXPECT_EQ(nic.driver, "e1000e");
  EXPECT_EQ(nic.numa_node, -1);
  EXPECT_FALSE(nic.boot_vga);  // boot_vga file present with "0"
}

TEST(PciScanTest, NullDriverOverrideIsEmptyAndRealOverrideIsKept) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:01:00.0"});
  host.AddDevice({.bdf = "0000:02:00.0"});
  host.WriteFile("sys/bus/pci/devices/0000:02:00.0/driver_override",
                 "vfio-pci\n");
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  EXPECT_EQ(Find(*devs, "0000:01:00.0")->driver_override, "");
  EXPECT_EQ(Find(*devs, "0000:02:00.0")->driver_override, "vfio-pci");
}

TEST(PciScanTest, UnboundDeviceWithoutIommuHasNoDriverAndNoGroup) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:03:00.0"});
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  ASSERT_EQ(devs->size(), 1u);
  EXPECT_EQ((*devs)[0].driver, "");
  EXPECT_FALSE((*devs)[0].iommu_group.has_value());
  EXPECT_TRUE((*devs)[0].group_members.empty());
}

TEST(PciScanTest, GroupMembersAreTheOtherDevicesOfTheGroup) {
  FakeHost host;
  host.AddDevice(
      {.bdf = "0000:00:1f.0", .class_code = 0x060100, .iommu_group = 9});
  host.AddDevice(
      {.bdf = "0000:00:1f.3", .class_code = 0x040300, .iommu_group = 9});
  host.AddDevice(
      {.bdf = "0000:00:1f.4", .class_code = 0x0c0500, .iommu_group = 9});
  host.AddDevice({.bdf = "0000:01:00.0", .iommu_group = 10});
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  const auto* audio = Find(*devs, "0000:00:1f.3");
  ASSERT_NE(audio, nullptr);
  EXPECT_EQ(
      audio->group_members,
      (std::vector<PciAddress>{Addr("0000:00:1f.0"), Addr("0000:00:1f.4")}));
  EXPECT_TRUE(Find(*devs, "0000:01:00.0")->group_members.empty());

  // The single-device read finds the same members from the group directory.
  auto one = ScanPciDevice(host.root(), Addr("0000:00:1f.3"));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->group_members, audio->group_members);
}

TEST(PciScanTest, BridgesByHeaderTypeAndClass) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:00:1c.0",
                  .vendor = 0x8086,
                  .device = 0xa110,
                  .class_code = 0x060400,
                  .header_type = 0x81,
                  .driver = "pcieport"});
  host.AddDevice({.bdf = "0000:01:00.0",
                  .class_code = 0x020000,
                  .parent = "0000:00:1c.0"});
  host.AddDevice(
      {.bdf = "0000:00:1e.0", .class_code = 0x060700, .header_type = 0x02});
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  const auto* port = Find(*devs, "0000:00:1c.0");
  EXPECT_EQ(port->layout(), HeaderLayout::kBridge);
  EXPECT_TRUE(port->multifunction());
  EXPECT_TRUE(port->is_bridge());
  EXPECT_EQ(port->subsystem_vendor_id, 0);  // type 1 headers have none
  EXPECT_EQ(Find(*devs, "0000:00:1e.0")->layout(), HeaderLayout::kCardBus);
  EXPECT_TRUE(Find(*devs, "0000:00:1e.0")->is_bridge());
  const auto* nic = Find(*devs, "0000:01:00.0");
  ASSERT_NE(nic, nullptr);  // found through the bus link, behind the bridge
  EXPECT_FALSE(nic->is_bridge());
}

TEST(PciScanTest, SriovPhysicalAndVirtualFunctions) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:04:00.0",
                  .device = 0x1572,
                  .driver = "i40e",
                  .iommu_group = 20,
                  .sriov_totalvfs = 64});
  host.AddDevice({.bdf = "0000:04:02.0",
                  .device = 0x154c,
                  .driver = "iavf",
                  .iommu_group = 21,
                  .physfn = "0000:04:00.0"});
  host.AddDevice({.bdf = "0000:04:02.1",
                  .device = 0x154c,
                  .iommu_group = 22,
                  .physfn = "0000:04:00.0"});
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  const auto* pf = Find(*devs, "0000:04:00.0");
  EXPECT_EQ(pf->sriov_totalvfs, 64);
  EXPECT_EQ(pf->sriov_numvfs, 2);
  EXPECT_EQ(pf->virtfns, (std::vector<PciAddress>{Addr("0000:04:02.0"),
                                                  Addr("0000:04:02.1")}));
  EXPECT_FALSE(pf->physfn.has_value());
  const auto* vf = Find(*devs, "0000:04:02.1");
  ASSERT_TRUE(vf->physfn.has_value());
  EXPECT_EQ(*vf->physfn, Addr("0000:04:00.0"));
  EXPECT_EQ(vf->sriov_totalvfs, -1);
  EXPECT_TRUE(vf->virtfns.empty());
}

TEST(PciScanTest, VirtualFunctionWithAllOnesIdsInConfigUsesSysfsIds) {
  FakeHost host;
  // An SR-IOV VF's Vendor/Device ID registers read 0xffff; the kernel's
  // vendor/device attributes carry the real ids.
  host.AddDevice({.bdf = "0000:05:10.0",
                  .vendor = 0x8086,
                  .device = 0x10ca,
                  .config_patches = {{0x00, {0xff, 0xff, 0xff, 0xff}}}});
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  EXPECT_EQ((*devs)[0].vendor_id, 0x8086);
  EXPECT_EQ((*devs)[0].device_id, 0x10ca);
}

TEST(PciScanTest, ShortConfigFallsBackToAttributes) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:06:00.0",
                  .vendor = 0x10de,
                  .device = 0x2204,
                  .class_code = 0x030000,
                  .revision = 0xa1});
  host.WriteFile("sys/bus/pci/devices/0000:06:00.0/config",
                 std::string(16, '\0'));
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  EXPECT_EQ((*devs)[0].vendor_id, 0x10de);
  EXPECT_EQ((*devs)[0].device_id, 0x2204);
  EXPECT_EQ((*devs)[0].class_code, 0x030000u);
  EXPECT_EQ((*devs)[0].revision, 0xa1);
}

TEST(PciScanTest, ResultIsSortedByAddressAndIgnoresStrayEntries) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:02:00.0"});
  host.AddDevice({.bdf = "0000:00:03.0"});
  host.AddDevice({.bdf = "0001:00:00.0"});
  host.MakeDir("sys/bus/pci/devices/not-a-device");
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  ASSERT_EQ(devs->size(), 3u);
  EXPECT_EQ((*devs)[0].address, Addr("0000:00:03.0"));
  EXPECT_EQ((*devs)[1].address, Addr("0000:02:00.0"));
  EXPECT_EQ((*devs)[2].address, Addr("0001:00:00.0"));
}

TEST(PciScanTest, MissingDeviceIsNotFoundWithHint) {
  FakeHost host;
  auto r = ScanPciDevice(host.root(), Addr("0000:09:00.0"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "no PCI device 0000:09:00.0 under " +
                                   host.Path("sys/bus/pci/devices").string() +
                                   "; run 'devpass list' to see the devices");
}

TEST(PciScanTest, MissingSysfsIsAnError) {
  FakeHost host;
  std::filesystem::remove_all(host.Path("sys/bus"));
  auto r = ScanPciDevices(host.root());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find("sysfs"), std::string::npos);
}

TEST(PciScanTest, LargeScanIsCompleteAndOrdered) {
  // Enough devices for the scan to run on several threads.
  FakeHost host;
  for (int i = 0; i < 300; ++i) {
    host.AddDevice({.bdf = fmt::format("0000:{:02x}:{:02x}.{}", 1 + i / 64,
                                       (i % 64) / 8, i % 8),
                    .device = static_cast<uint16_t>(i),
                    .iommu_group = i / 2});
  }
  auto devs = ScanPciDevices(host.root());
  ASSERT_TRUE(devs);
  ASSERT_EQ(devs->size(), 300u);
  for (size_t i = 0; i < devs->size(); ++i) {
    EXPECT_EQ((*devs)[i].device_id, i);
    EXPECT_EQ((*devs)[i].iommu_group, static_cast<int>(i / 2));
    ASSERT_EQ((*devs)[i].group_members.size(), 1u);
    EXPECT_EQ((*devs)[i].group_members[0], (*devs)[i ^ 1].address);
  }
}

}  // namespace
}  // namespace devpass::host
