#include "host/assessment.h"

#include <gtest/gtest.h>

#include "fake_host.h"
#include "host/iommu_group.h"

namespace devpass::host {
namespace {

using testing::FakeHost;

PciAddress Addr(const char* s) { return *PciAddress::Parse(s); }

struct Assessed {
  std::vector<PciDeviceInfo> devices;
  std::vector<DeviceAssessment> result;
  const DeviceAssessment& operator[](const char* bdf) const {
    for (size_t i = 0; i < devices.size(); ++i) {
      if (devices[i].address == Addr(bdf)) return result[i];
    }
    throw std::runtime_error(std::string("no device ") + bdf);
  }
};

Assessed Assess(const FakeHost& host,
                const std::set<PciAddress>& assigned = {}) {
  Assessed a;
  a.devices = *ScanPciDevices(host.root());
  auto usage = HostUsage::Scan(host.root());
  EXPECT_TRUE(usage) << usage.error().ToString();
  a.result = AssessDevices(a.devices, *usage, assigned);
  return a;
}

TEST(AssessmentTest, LoneDeviceInItsOwnGroupIsAssignable) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:01:00.0", .driver = "e1000e", .iommu_group = 1});
  auto a = Assess(host);
  EXPECT_TRUE(a["0000:01:00.0"].assignable);
  EXPECT_TRUE(a["0000:01:00.0"].reasons.empty());
}

TEST(AssessmentTest, NoIommuGroup) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:01:00.0", .driver = "e1000e"});
  auto a = Assess(host);
  EXPECT_FALSE(a["0000:01:00.0"].assignable);
  EXPECT_EQ(a["0000:01:00.0"].reasons,
            (std::vector<std::string>{"no IOMMU group (IOMMU off)"}));
}

TEST(AssessmentTest, BridgeIsNotAssignableButDoesNotBlockItsGroup) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:00:1c.0",
                  .class_code = 0x060400,
                  .header_type = 1,
                  .driver = "pcieport",
                  .iommu_group = 5});
  host.AddDevice({.bdf = "0000:01:00.0",
                  .driver = "nvme",
                  .iommu_group = 5,
                  .parent = "0000:00:1c.0"});
  auto a = Assess(host);
  EXPECT_EQ(a["0000:00:1c.0"].reasons, (std::vector<std::string>{"bridge"}));
  EXPECT_TRUE(a["0000:01:00.0"].assignable);
}

TEST(AssessmentTest, HostAndIsaBridgesAreBridgesThoughHeaderTypeZero) {
  FakeHost host;
  host.AddDevice(
      {.bdf = "0000:00:00.0", .class_code = 0x060000, .iommu_group = 0});
  host.AddDevice({.bdf = "0000:00:1f.0",
                  .class_code = 0x060100,
                  .driver = "lpc_ich",
                  .iommu_group = 8});
  auto a = Assess(host);
  for (const char* bdf : {"0000:00:00.0", "0000:00:1f.0"}) {
    EXPECT_FALSE(a[bdf].assignable) << bdf;
    EXPECT_EQ(a[bdf].reasons, (std::vector<std::string>{"bridge"})) << bdf;
  }
  EXPECT_EQ(BridgeKind(0x060000), "host bridge");
  EXPECT_EQ(BridgeKind(0x060100), "ISA bridge");
  EXPECT_EQ(BridgeKind(0x020000), "");
}

TEST(AssessmentTest, GroupSharedWithHostDevicesNamesThem) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:00:1f.0",
                  .class_code = 0x060100,
                  .driver = "lpc_ich",
                  .iommu_group = 9});
  host.AddDevice({.bdf = "0000:00:1f.3",
                  .class_code = 0x040300,
                  .driver = "snd_hda_intel",
                  .iommu_group = 9});
  host.AddDevice(
      {.bdf = "0000:00:1f.4", .class_code = 0x0c0500, .iommu_group = 9});
  host.AddDevice({.bdf = "0000:00:1f.5",
                  .class_code = 0x0c8000,
                  .driver = "vfio-pci",
                  .iommu_group = 9});
  auto a = Assess(host);
  const auto& audio = a["0000:00:1f.3"];
  EXPECT_FALSE(audio.assignable);
  ASSERT_EQ(audio.reasons.size(), 1u);
  // Unbound (1f.4) and stub-bound (1f.5) members do not block.
  EXPECT_EQ(audio.reasons[0],
            "group shared with devices in host use: 0000:00:1f.0 (lpc_ich)");
  ASSERT_EQ(audio.blocking.size(), 1u);
  EXPECT_EQ(audio.blocking[0].driver, "lpc_ich");
  EXPECT_EQ(a["0000:00:1f.4"].reasons[0],
            "group shared with devices in host use: 0000:00:1f.0 (lpc_ich), "
            "0000:00:1f.3 (snd_hda_intel)");
}

TEST(AssessmentTest, AgreesWithTheKernelRuleAsReadIommuGroupComputesIt) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:00:1c.0",
                  .class_code = 0x060400,
                  .header_type = 1,
                  .driver = "pcieport",
                  .iommu_group = 7});
  host.AddDevice({.bdf = "0000:02:00.0", .driver = "igb", .iommu_group = 7});
  host.AddDevice(
      {.bdf = "0000:02:00.1", .driver = "pci-stub", .iommu_group = 7});
  host.AddDevice({.bdf = "0000:02:00.2", .iommu_group = 7});
  host.AddDevice(
      {.bdf = "0000:02:00.3", .driver = "mlx5_vfio_pci", .iommu_group = 7});
  auto a = Assess(host);
  for (size_t i = 0; i < a.devices.size(); ++i) {
    const auto& dev = a.devices[i];
    if (dev.is_bridge()) continue;  // never assignable; no group verdict
    auto group = ReadIommuGroup(host.root(), dev.address);
    ASSERT_TRUE(group && group->has_value());
    auto blocking = BlockingMembers(**group, {dev.address});
    ASSERT_EQ(blocking.size(), a.result[i].blocking.size())
        << dev.address.ToString();
    for (size_t j = 0; j < blocking.size(); ++j) {
      EXPECT_EQ(blocking[j].address, a.result[i].blocking[j].address);
      EXPECT_EQ(blocking[j].driver, a.result[i].blocking[j].driver);
    }
  }
}

TEST(AssessmentTest, HostCriticalBootGpu) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:00:02.0",
                  .class_code = 0x030000,
                  .driver = "i915",
                  .iommu_group = 0,
                  .boot_vga = 1});
  auto a = Assess(host);
  const auto& gpu = a["0000:00:02.0"];
  EXPECT_FALSE(gpu.assignable);
  ASSERT_EQ(gpu.reasons.size(), 1u);
  EXPECT_EQ(gpu.reasons[0].rfind("host-critical: ", 0), 0u) << gpu.reasons[0];
  ASSERT_EQ(gpu.host_dependencies.size(), 1u);
  EXPECT_EQ(gpu.host_dependencies[0].kind, HostDependency::Kind::kBootVga);
}

TEST(AssessmentTest, AlreadyAssignedAndReasonsInOrder) {
  FakeHost host;
  host.AddDevice(
      {.bdf = "0000:01:00.0", .driver = "vfio-pci", .iommu_group = 1});
  host.AddDevice({.bdf = "0000:02:00.0", .driver = "e1000e"});
  auto a = Assess(host, {Addr("0000:01:00.0"), Addr("0000:02:00.0")});
  EXPECT_EQ(a["0000:01:00.0"].reasons,
            (std::vector<std::string>{"already assigned"}));
  EXPECT_EQ(a["0000:02:00.0"].reasons,
            (std::vector<std::string>{"no IOMMU group (IOMMU off)",
                                      "already assigned"}));
}

TEST(AssessmentTest, InHostUseRule) {
  PciDeviceInfo d;
  EXPECT_FALSE(InHostUse(d));  // unbound
  d.driver = "e1000e";
  EXPECT_TRUE(InHostUse(d));
  d.driver = "vfio-pci";
  EXPECT_FALSE(InHostUse(d));
  d.driver = "pcieport";
  EXPECT_FALSE(InHostUse(d));
  d.driver = "shpchp";
  d.header_type = 1;
  EXPECT_FALSE(InHostUse(d));
}

}  // namespace
}  // namespace devpass::host
