#include "host/iommu_group.h"

#include <gtest/gtest.h>

#include "fake_host.h"

namespace devpass::host {
namespace {

using devpass::testing::FakeHost;

PciAddress A(std::string_view s) { return *PciAddress::Parse(s); }

TEST(IommuGroupTest, StubDriversIncludeVfioVariants) {
  EXPECT_TRUE(IsStubDriver("vfio-pci"));
  EXPECT_TRUE(IsStubDriver("pci-stub"));
  EXPECT_TRUE(IsStubDriver("pciback"));
  EXPECT_TRUE(IsStubDriver("mlx5_vfio_pci"));
  EXPECT_FALSE(IsStubDriver("e1000e"));
  EXPECT_FALSE(IsStubDriver(""));
}

TEST(IommuGroupTest, ReadsMembersWithBridgeAndHostUse) {
  FakeHost h;
  h.AddDevice({.bdf = "0000:00:01.0",
               .class_code = 0x060400,
               .header_type = 1,
               .driver = "pcieport",
               .iommu_group = 5});
  h.AddDevice({.bdf = "0000:01:00.0",
               .class_code = 0x030000,
               .driver = "nouveau",
               .iommu_group = 5,
               .parent = "0000:00:01.0"});
  h.AddDevice({.bdf = "0000:01:00.1",
               .class_code = 0x040300,
               .driver = "vfio-pci",
               .iommu_group = 5,
               .parent = "0000:00:01.0"});
  h.AddDevice({.bdf = "0000:01:00.2",
               .class_code = 0x0c0330,
               .iommu_group = 5,
               .parent = "0000:00:01.0"});
  // A bridge by header type alone (multifunction bit set), no driver.
  h.AddDevice({.bdf = "0000:01:00.3",
               .class_code = 0x068000,
               .header_type = 0x81,
               .driver = "shpchp",
               .iommu_group = 5,
               .parent = "0000:00:01.0"});
  auto g = ReadIommuGroup(h.root(), A("0000:01:00.0"));
  ASSERT_TRUE(g) << g.error().ToString();
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->id, 5);
  ASSERT_EQ((*g)->members.size(), 5u);
  const auto& m = (*g)->members;
  EXPECT_EQ(m[0].address, A("0000:00:01.0"));
  EXPECT_TRUE(m[0].is_bridge);
  EXPECT_FALSE(m[0].in_host_use);
  EXPECT_EQ(m[1].driver, "nouveau");
  EXPECT_TRUE(m[1].in_host_use);
  EXPECT_FALSE(m[2].in_host_use);  // vfio-pci
  EXPECT_EQ(m[3].driver, "");
  EXPECT_FALSE(m[3].in_host_use);  // unbound
  EXPECT_TRUE(m[4].is_bridge);
  EXPECT_FALSE(m[4].in_host_use);

  auto blocking = BlockingMembers(**g, {A("0000:01:00.1")});
  ASSERT_EQ(blocking.size(), 1u);
  EXPECT_EQ(blocking[0].address, A("0000:01:00.0"));
  EXPECT_TRUE(BlockingMembers(**g, {A("0000:01:00.0")}).empty());
}

TEST(IommuGroupTest, NoGroupAndMissingDevice) {
  FakeHost h;
  h.AddDevice({.bdf = "0000:00:03.0", .driver = "e1000e"});
  auto g = ReadIommuGroup(h.root(), A("0000:00:03.0"));
  ASSERT_TRUE(g);
  EXPECT_FALSE(g->has_value());
  auto missing = ReadIommuGroup(h.root(), A("0000:09:00.0"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("0000:09:00.0"), std::string::npos);
}

TEST(IommuGroupTest, IsBridge) {
  FakeHost h;
  h.AddDevice(
      {.bdf = "0000:00:01.0", .class_code = 0x060400, .header_type = 1});
  h.AddDevice({.bdf = "0000:00:03.0"});
  EXPECT_TRUE(*IsBridge(h.root(), A("0000:00:01.0")));
  EXPECT_FALSE(*IsBridge(h.root(), A("0000:00:03.0")));
  EXPECT_FALSE(IsBridge(h.root(), A("0000:00:09.0")));
}

}  // namespace
}  // namespace devpass::host
