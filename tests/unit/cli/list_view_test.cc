#include "cli/list_view.h"

#include <gtest/gtest.h>

#include "fake_host.h"

namespace devpass::cli {
namespace {

using testing::FakeHost;

constexpr const char* kIds =
    "8086  Intel Corporation\n"
    "\t15b8  Ethernet Connection (2) I219-V\n"
    "\t1572  Ethernet Controller X710 for 10GbE SFP+\n"
    "\t154c  Ethernet Virtual Function 700 Series\n"
    "10de  NVIDIA Corporation\n"
    "\t2204  GA102 [GeForce RTX 3090]\n"
    "C 02  Network controller\n"
    "\t00  Ethernet controller\n"
    "C 03  Display controller\n"
    "\t00  VGA compatible controller\n"
    "C 06  Bridge\n"
    "\t04  PCI bridge\n";

// A small host: a root port with a GPU behind it (group 1, with the port),
// a NIC alone (group 2), an SR-IOV PF with one VF (groups 3, 4), and an
// audio function sharing group 5 with a host-bound SMBus controller.
void MakeHost(FakeHost& host) {
  host.WriteFile("usr/share/misc/pci.ids", kIds);
  host.AddDevice({.bdf = "0000:00:01.0",
                  .vendor = 0x8086,
                  .device = 0x1901,
                  .class_code = 0x060400,
                  .header_type = 0x01,
                  .driver = "pcieport",
                  .iommu_group = 1});
  host.AddDevice({.bdf = "0000:01:00.0",
                  .vendor = 0x10de,
                  .device = 0x2204,
                  .class_code = 0x030000,
                  .driver = "vfio-pci",
                  .iommu_group = 1,
                  .parent = "0000:00:01.0",
                  .numa_node = 0,
                  .boot_vga = 0});
  host.AddDevice({.bdf = "0000:00:1f.6",
                  .vendor = 0x8086,
                  .device = 0x15b8,
                  .class_code = 0x020000,
                  .driver = "e1000e",
                  .iommu_group = 2});
  host.AddDevice({.bdf = "0000:03:00.0",
                  .vendor = 0x8086,
                  .device = 0x1572,
                  .class_code = 0x020000,
                  .driver = "i40e",
                  .iommu_group = 3,
                  .sriov_totalvfs = 32});
  host.AddDevice({.bdf = "0000:03:02.0",
                  .vendor = 0x8086,
                  .device = 0x154c,
                  .class_code = 0x020000,
                  .iommu_group = 4,
                  .physfn = "0000:03:00.0"});
  host.AddDevice({.bdf = "0000:00:1f.3",
                  .vendor = 0x8086,
                  .device = 0xa348,
                  .class_code = 0x040300,
                  .iommu_group = 5});
  host.AddDevice({.bdf = "0000:00:1f.4",
                  .vendor = 0x8086,
                  .device = 0xa323,
                  .class_code = 0x0c0500,
                  .driver = "i801_smbus",
                  .iommu_group = 5});
}

const nlohmann::json* Find(const nlohmann::json& list, const std::string& bdf) {
  for (const auto& d : list) {
    if (d["address"] == bdf) return &d;
  }
  return nullptr;
}

std::vector<std::string> Addresses(const nlohmann::json& list) {
  std::vector<std::string> out;
  for (const auto& d : list) out.push_back(d["address"]);
  return out;
}

TEST(ClassFilterTest, HexPrefixesAndNames) {
  auto f = ParseClassFilter("02");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->Matches(0x020000));
  EXPECT_TRUE(f->Matches(0x028000));
  EXPECT_FALSE(f->Matches(0x030000));
  auto sub = ParseClassFilter("0x0200");
  ASSERT_TRUE(sub);
  EXPECT_TRUE(sub->Matches(0x020000));
  EXPECT_FALSE(sub->Matches(0x028000));
  auto full = ParseClassFilter("0C0330");
  ASSERT_TRUE(full);
  EXPECT_TRUE(full->Matches(0x0c0330));
  EXPECT_FALSE(full->Matches(0x0c0320));
  EXPECT_TRUE(ParseClassFilter("usb")->Matches(0x0c0330));
  EXPECT_FALSE(ParseClassFilter("usb")->Matches(0x0c0500));
  EXPECT_TRUE(ParseClassFilter("Network")->Matches(0x020000));
  EXPECT_TRUE(ParseClassFilter("storage")->Matches(0x010802));
  EXPECT_TRUE(ParseClassFilter("display")->Matches(0x030200));
  EXPECT_TRUE(ParseClassFilter("bridge")->Matches(0x060400));
  EXPECT_TRUE(ParseClassFilter("serial")->Matches(0x070002));
}

TEST(ClassFilterTest, RejectsMalformed) {
  for (const char* bad : {"2", "020", "0x", "zz", "networks", ""}) {
    auto f = ParseClassFilter(bad);
    ASSERT_FALSE(f) << bad;
    EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(f.error().message.find("network=02"), std::string::npos);
  }
}

TEST(ListViewTest, JsonCarriesEverything) {
  FakeHost host;
  MakeHost(host);
  auto list = ListJson(host.root(), {});
  ASSERT_TRUE(list) << list.error().ToString();
  ASSERT_EQ(list->size(), 7u);
  EXPECT_EQ(Addresses(*list),
            (std::vector<std::string>{
                "0000:00:01.0", "0000:00:1f.3", "0000:00:1f.4", "0000:00:1f.6",
                "0000:01:00.0", "0000:03:00.0", "0000:03:02.0"}));
  const auto& gpu = *Find(*list, "0000:01:00.0");
  EXPECT_EQ(gpu["vendor_id"], "10de");
  EXPECT_EQ(gpu["device_id"], "2204");
  EXPECT_EQ(gpu["class"], "030000");
  EXPECT_EQ(gpu["vendor_name"], "NVIDIA Corporation");
  EXPECT_EQ(gpu["device_name"], "GA102 [GeForce RTX 3090]");
  EXPECT_EQ(gpu["class_name"], "VGA compatible controller");
  EXPECT_EQ(gpu["class_short"], "display");
  EXPECT_EQ(gpu["driver"], "vfio-pci");
  EXPECT_TRUE(gpu["driver_override"].is_null());  // "(null)" in sysfs
  EXPECT_EQ(gpu["iommu_group"], 1);
  EXPECT_EQ(gpu["group_members"], nlohmann::json::array({"0000:00:01.0"}));
  EXPECT_EQ(gpu["numa_node"], 0);
  EXPECT_EQ(gpu["boot_vga"], false);
  EXPECT_EQ(gpu["assignable"], true);  // the root port does not block
  EXPECT_EQ(gpu["reasons"], nlohmann::json::array());

  const auto& port = *Find(*list, "0000:00:01.0");
  EXPECT_EQ(port["bridge"], true);
  EXPECT_EQ(port["assignable"], false);
  EXPECT_EQ(port["reasons"], nlohmann::json::array({"bridge"}));

  const auto& pf = *Find(*list, "0000:03:00.0");
  EXPECT_EQ(pf["sriov_totalvfs"], 32);
  EXPECT_EQ(pf["virtfns"], nlohmann::json::array({"0000:03:02.0"}));
  EXPECT_TRUE(pf["physfn"].is_null());
  const auto& vf = *Find(*list, "0000:03:02.0");
  EXPECT_EQ(vf["physfn"], "0000:03:00.0");
  EXPECT_TRUE(vf["driver"].is_null());
  EXPECT_TRUE(vf["numa_node"].is_null());  // -1 in sysfs
  EXPECT_TRUE(vf["sriov_totalvfs"].is_null());

  const auto& audio = *Find(*list, "0000:00:1f.3");
  EXPECT_EQ(audio["assignable"], false);
  EXPECT_EQ(audio["reasons"],
            nlohmann::json::array({"group shared with devices in host use: "
                                   "0000:00:1f.4 (i801_smbus)"}));
  // Unknown to pci.ids: names are null, ids are still there.
  EXPECT_TRUE(audio["device_name"].is_null());
  EXPECT_EQ(audio["device_id"], "a348");
}

TEST(ListViewTest, Filters) {
  FakeHost host;
  MakeHost(host);
  ListOptions network;
  network.class_filter = *ParseClassFilter("network");
  EXPECT_EQ(Addresses(*ListJson(host.root(), network)),
            (std::vector<std::string>{"0000:00:1f.6", "0000:03:00.0",
                                      "0000:03:02.0"}));

  ListOptions group;
  group.group = 5;
  EXPECT_EQ(Addresses(*ListJson(host.root(), group)),
            (std::vector<std::string>{"0000:00:1f.3", "0000:00:1f.4"}));

  ListOptions assignable;
  assignable.assignable_only = true;
  auto only = *ListJson(host.root(), assignable);
  for (const auto& d : only) EXPECT_EQ(d["assignable"], true) << d["address"];
  EXPECT_EQ(Addresses(only), (std::vector<std::string>{
                                 "0000:00:1f.4", "0000:00:1f.6", "0000:01:00.0",
                                 "0000:03:00.0", "0000:03:02.0"}));

  ListOptions combined;
  combined.class_filter = *ParseClassFilter("0200");
  combined.group = 4;
  EXPECT_EQ(Addresses(*ListJson(host.root(), combined)),
            (std::vector<std::string>{"0000:03:02.0"}));
}

TEST(ListViewTest, TextTableHasAHeaderARowPerDeviceAndASummary) {
  FakeHost host;
  MakeHost(host);
  auto listing = BuildListing(host.root(), {});
  ASSERT_TRUE(listing);
  std::string text = ListText(*listing);
  EXPECT_EQ(text.rfind("ADDRESS", 0), 0u);
  EXPECT_NE(text.find("7 devices, 5 assignable"), std::string::npos) << text;
  EXPECT_NE(text.find("GA102 [GeForce RTX 3090]"), std::string::npos);
  EXPECT_NE(text.find("no: group shared with devices in host use"),
            std::string::npos);
  EXPECT_NE(text.find("8086:a348"), std::string::npos);
  // The IOMMU is on here: no hint.
  EXPECT_EQ(text.find("IOMMU is off"), std::string::npos);
  size_t lines = std::count(text.begin(), text.end(), '\n');
  EXPECT_EQ(lines, 1u + 7u + 1u);
}

TEST(ListViewTest, TextWithoutIommuSaysSoAndTruncatesLongNames) {
  FakeHost host;
  host.WriteFile(
      "usr/share/misc/pci.ids",
      "1234  Vendor\n\t5678  A device name that is far too long to fit the "
      "column of the table\n");
  host.AddDevice({.bdf = "0000:00:03.0",
                  .vendor = 0x1234,
                  .device = 0x5678,
                  .driver = "virtio-pci"});
  auto listing = BuildListing(host.root(), {});
  ASSERT_TRUE(listing);
  std::string text = ListText(*listing);
  EXPECT_NE(text.find("no: no IOMMU group (IOMMU off)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("the IOMMU is off"), std::string::npos);
  EXPECT_NE(text.find("A device name that is far too long to..."),
            std::string::npos)
      << text;
}

TEST(ListViewTest, AssignedDevicesComeFromLedgerAssignments) {
  FakeHost host;
  MakeHost(host);
  host.WriteFile("var/lib/devpass/ledger.json", "{ not json");
  std::vector<std::string> warnings;
  EXPECT_TRUE(AssignedDevices(host.root(), &warnings).empty());
  ASSERT_EQ(warnings.size(), 1u);
  // The listing still works and carries the warning.
  auto listing = BuildListing(host.root(), {});
  ASSERT_TRUE(listing);
  EXPECT_EQ(listing->warnings.size(), 1u);
}

TEST(ListViewTest, FastJsonTextIsByteIdenticalToNlohmannDump) {
  FakeHost host;
  MakeHost(host);
  // Names and an override that need escaping, and a host dependency.
  host.WriteFile("usr/share/misc/pci.ids",
                 std::string(kIds) + "1234  Quote \"Vendor\" \\ back\tslash\n");
  host.AddDevice({.bdf = "0000:04:00.0",
                  .vendor = 0x1234,
                  .device = 0x0001,
                  .class_code = 0x030000,
                  .driver = "qxl",
                  .iommu_group = 8,
                  .boot_vga = 1});
  host.WriteFile("sys/bus/pci/devices/0000:04:00.0/driver_override",
                 "we\"ird\x01\n");
  auto listing = BuildListing(host.root(), {});
  ASSERT_TRUE(listing);
  auto j = ListJson(*listing);
  EXPECT_EQ(ListJsonText(*listing), j.dump(2));
  // The cases above really were exercised.
  const auto& odd = j[7];
  EXPECT_EQ(odd["vendor_name"], "Quote \"Vendor\" \\ back\tslash");
  EXPECT_EQ(odd["driver_override"], "we\"ird\x01");
  EXPECT_EQ(odd["host_dependencies"].size(), 1u);

  Listing empty;
  EXPECT_EQ(ListJsonText(empty), ListJson(empty).dump(2));
}

TEST(ListViewTest, MissingSysfsIsAnError) {
  FakeHost host;
  std::filesystem::remove_all(host.Path("sys/bus/pci"));
  auto list = ListJson(host.root(), {});
  ASSERT_FALSE(list);
}

}  // namespace
}  // namespace devpass::cli
