#include "cli/show_view.h"

#include <gtest/gtest.h>

#include "fake_host.h"

namespace devpass::cli {
namespace {

using testing::CapChain;
using testing::Cat;
using testing::FakeDevice;
using testing::FakeHost;
using testing::Le16;
using testing::Le32;

std::vector<uint8_t> Zeros(size_t n) { return std::vector<uint8_t>(n, 0); }

// An SR-IOV capable NIC with the usual capabilities, in group 7 with a
// second function bound to a host driver.
void MakeHost(FakeHost& host) {
  FakeDevice nic{
      .bdf = "0000:02:00.0",
      .vendor = 0x8086,
      .device = 0x1572,
      .class_code = 0x020000,
      .driver = "i40e",
      .iommu_group = 7,
      .numa_node = 1,
      .reset_method = "flr bus",
      .sriov_totalvfs = 64,
      .resources = {{0xf8000000, 0xf8ffffff,
                     testing::kResourceMem | testing::kResourceMem64 |
                         testing::kResourcePrefetch},
                    {},
                    {},
                    {0xf9008000, 0xf900ffff, testing::kResourceMem}}};
  CapChain chain;
  chain.Add(0x40, 0x01, Cat({Le16(0x0603), Le16(0x0008)}))
      .Add(0x50, 0x05, Cat({Le16(0x0180), Le32(0), Le32(0), Le16(0)}))
      .Add(0x70, 0x11, Cat({Le16(0x0080), Le32(0x00000000), Le32(0x00001003)}))
      .Add(0xa0, 0x10,
           Cat({Le16(0x0002), Le32(0x10008000), Le16(0), Le16(0),
                Le32(0x00000083), Le16(0), Le16(0x0083)}));
  chain.AddExtended(0x100, 0x0001, 2, Zeros(0x40))
      .AddExtended(0x150, 0x000d, 1, Cat({Le16(0x001f), Le16(0)}))
      .AddExtended(0x160, 0x0010, 1,
                   Cat({Le32(0), Le16(0), Le16(0), Le16(64), Le16(64), Le16(0),
                        Le16(0), Le16(0x10), Le16(1), Le16(0), Le16(0x154c)}))
      .AddExtended(0x1a0, 0x0015, 1, Cat({Le32(0x000000f0), Le32(0x00000320)}));
  chain.ApplyTo(&nic);
  host.AddDevice(nic);
  host.AddDevice({.bdf = "0000:02:00.1",
                  .vendor = 0x8086,
                  .device = 0x1572,
                  .class_code = 0x020000,
                  .driver = "i40e",
                  .iommu_group = 7});
}

TEST(ShowViewTest, JsonHasCapabilitiesBarsResetAndGroup) {
  FakeHost host;
  MakeHost(host);
  auto details = BuildDetails(host.root(), *PciAddress::Parse("02:00.0"));
  ASSERT_TRUE(details) << details.error().ToString();
  auto j = ShowJson(*details);
  EXPECT_EQ(j["address"], "0000:02:00.0");
  EXPECT_EQ(j["reset_method"], nlohmann::json::array({"flr", "bus"}));
  EXPECT_EQ(j["flr"], true);
  EXPECT_EQ(j["numa_node"], 1);
  EXPECT_EQ(j["assignable"], false);
  EXPECT_EQ(
      j["reasons"],
      nlohmann::json::array(
          {"group shared with devices in host use: 0000:02:00.1 (i40e)"}));
  ASSERT_EQ(j["group"].size(), 1u);
  EXPECT_EQ(j["group"][0]["address"], "0000:02:00.1");
  EXPECT_EQ(j["group"][0]["driver"], "i40e");
  EXPECT_EQ(j["group"][0]["in_host_use"], true);

  ASSERT_EQ(j["bars"].size(), 2u);
  EXPECT_EQ(j["bars"][0]["kind"], "mem64");
  EXPECT_EQ(j["bars"][0]["size_human"], "16 MiB");
  EXPECT_EQ(j["bars"][0]["prefetchable"], true);
  EXPECT_EQ(j["bars"][1]["index"], 3);
  EXPECT_EQ(j["bars"][1]["size"], 32768);

  const auto& caps = j["capabilities"];
  ASSERT_EQ(caps.size(), 8u);
  EXPECT_EQ(caps[2]["name"], "MSI-X");
  EXPECT_EQ(caps[2]["offset"], "0x70");
  EXPECT_EQ(caps[2]["fields"]["table_size"], 129);
  EXPECT_EQ(caps[2]["fields"]["pba_bar"], 3);
  EXPECT_EQ(caps[2]["fields"]["pba_offset"], 0x1000);
  EXPECT_EQ(caps[3]["fields"]["flr"], true);
  EXPECT_EQ(caps[5]["id"], "0x000d");
  EXPECT_EQ(caps[5]["fields"]["uf"], true);
  EXPECT_EQ(caps[5]["fields"]["ec"], false);
  EXPECT_EQ(caps[6]["fields"]["total_vfs"], 64);
  EXPECT_EQ(caps[6]["fields"]["vf_device_id"], "154c");
  EXPECT_EQ(caps[7]["fields"]["bars"][0]["current_size"], 8ull << 20);
  EXPECT_EQ(j["config_problems"], nlohmann::json::array());
}

TEST(ShowViewTest, TextSpellsOutTheParsedFields) {
  FakeHost host;
  MakeHost(host);
  auto details = BuildDetails(host.root(), *PciAddress::Parse("0000:02:00.0"));
  ASSERT_TRUE(details);
  std::string text = ShowText(*details);
  for (const char* want :
       {"129 vectors; table in BAR 0 at offset 0x0, PBA in BAR 3 at offset "
        "0x1000",
        "[0a0] PCI Express: Endpoint, FLR yes, link 8 GT/s x8 (max 8 GT/s x8)",
        "[150] Access Control Services: SV+ TB+ RR+ CR+ UF+ EC- DT-",
        "TotalVFs 64, InitialVFs 64, NumVFs 0, VF offset 16, stride 1, VF "
        "device id 154c",
        "[1a0] Resizable BAR: BAR 0: 1 MiB, 2 MiB, 4 MiB, 8 MiB (current 8 "
        "MiB)",
        "No_Soft_Reset yes", "1 vector, 64-bit, per-vector masking yes",
        "reset methods:   flr, bus", "FLR:             yes",
        "IOMMU group:     7", "0000:02:00.1  i40e  in host use", "BAR0  mem64",
        "16 MiB  prefetchable", "[100] Advanced Error Reporting\n"}) {
    EXPECT_NE(text.find(want), std::string::npos) << "missing: " << want << "\n"
                                                  << text;
  }
}

TEST(ShowViewTest, MissingDeviceNamesTheFixCommand) {
  FakeHost host;
  MakeHost(host);
  auto details = BuildDetails(host.root(), *PciAddress::Parse("0000:09:00.0"));
  ASSERT_FALSE(details);
  EXPECT_EQ(details.error().code, ErrorCode::kNotFound);
  EXPECT_NE(details.error().message.find("run 'devpass list'"),
            std::string::npos);
}

TEST(ShowViewTest, GarbageConfigStillShows) {
  FakeHost host;
  FakeDevice dev{.bdf = "0000:05:00.0", .iommu_group = 3};
  // Capability pointer loops on itself.
  dev.config_patches = {
      {0x06, {0x10, 0x00}}, {0x34, {0x40}}, {0x40, {0x09, 0x40}}};
  host.AddDevice(dev);
  auto details = BuildDetails(host.root(), *PciAddress::Parse("0000:05:00.0"));
  ASSERT_TRUE(details);
  std::string text = ShowText(*details);
  EXPECT_NE(text.find("note: capability list loops at 0x40"), std::string::npos)
      << text;
  EXPECT_EQ(ShowJson(*details)["config_problems"].size(), 1u);
}

}  // namespace
}  // namespace devpass::cli
