// list, show and check run the way main.cc runs them (CLI11 parsing, --json
// before or after the subcommand, exit statuses), against fake trees.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/check_view.h"
#include "cli/commands.h"
#include "fake_host.h"
#include "run_devpass.h"

namespace devpass::cli {
namespace {

using devpass::testing::FakeHost;

void AddDevices(FakeHost& host) {
  host.AddDevice({.bdf = "0000:00:1f.6",
                  .class_code = 0x020000,
                  .driver = "e1000e",
                  .iommu_group = 2});
  host.AddDevice({.bdf = "0000:00:14.0",
                  .class_code = 0x0c0330,
                  .driver = "xhci_hcd",
                  .iommu_group = 3});
}

TEST(DiscoveryCommandsTest, ListJsonAfterTheSubcommand) {
  FakeHost host;
  AddDevices(host);
  auto r = RunDevpass(host, {"list", "--class", "usb", "--json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["address"], "0000:00:14.0");
  auto before = RunDevpass(host, {"--json", "list", "--group", "2"});
  EXPECT_EQ(nlohmann::json::parse(before.out)[0]["address"], "0000:00:1f.6");
}

TEST(DiscoveryCommandsTest, ListBadClassIsAUsageError) {
  FakeHost host;
  auto r = RunDevpass(host, {"list", "--class", "nonsense", "--json"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["error"]["code"], "invalid-argument");
}

TEST(DiscoveryCommandsTest, ShowMalformedAddressExitsTwoWithTheParseMessage) {
  FakeHost host;
  auto r = RunDevpass(host, {"show", "01:00"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("is not a PCI address"), std::string::npos) << r.err;
}

TEST(DiscoveryCommandsTest, ShowMissingDeviceIsAnErrorObjectInJson) {
  FakeHost host;
  auto r = RunDevpass(host, {"show", "0000:07:00.0", "--json"});
  EXPECT_EQ(r.exit_code, kExitError);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["error"]["code"], "not-found");
  EXPECT_NE(j["error"]["message"].get<std::string>().find(
                "no PCI device 0000:07:00.0"),
            std::string::npos);
}

TEST(DiscoveryCommandsTest, ShowText) {
  FakeHost host;
  AddDevices(host);
  auto r = RunDevpass(host, {"show", "00:1f.6"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(r.out.rfind("0000:00:1f.6", 0), 0u);
  EXPECT_NE(r.out.find("assignable:      yes"), std::string::npos) << r.out;
}

TEST(DiscoveryCommandsTest, CheckExitsThreeOnFailureAndZeroWhenReady) {
  FakeHost host;
  AddDevices(host);
  // No IOMMU: no DMAR/IVRS, no /dev/kvm.
  auto bad = RunDevpass(host, {"check"});
  EXPECT_EQ(bad.exit_code, kExitCheckFailed);
  EXPECT_NE(bad.out.find("FAIL  IOMMU in firmware"), std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find("NOT ready"), std::string::npos);

  host.SetCpuFlags("fpu svm");
  host.WriteFile("dev/kvm", "");
  host.WriteFile("dev/vfio/vfio", "");
  host.WriteFile("sys/firmware/acpi/tables/IVRS", "");
  host.SetCmdline("root=/dev/sda1 iommu=pt");
  host.AddModule("vfio_pci");
  auto good = RunDevpass(host, {"check", "--json"});
  EXPECT_EQ(good.exit_code, kExitOk) << good.out;
  auto j = nlohmann::json::parse(good.out);
  EXPECT_EQ(j["ready"], true);
  EXPECT_EQ(j["summary"]["fail"], 0);
  EXPECT_EQ(j["findings"].size(), 10u);
}

TEST(CheckViewTest, SummaryCountsAndNullFixForPass) {
  std::vector<host::Finding> findings = {
      {"a", "A", host::FindingStatus::kPass, "fine", ""},
      {"b", "B", host::FindingStatus::kWarn, "meh", "do x"},
      {"c", "C", host::FindingStatus::kFail, "bad", "do y"},
      {"d", "D", host::FindingStatus::kFail, "bad too", "do z"},
  };
  auto j = CheckJson(findings);
  EXPECT_EQ(j["summary"]["pass"], 1);
  EXPECT_EQ(j["summary"]["warn"], 1);
  EXPECT_EQ(j["summary"]["fail"], 2);
  EXPECT_EQ(j["ready"], false);
  EXPECT_TRUE(j["findings"][0]["fix"].is_null());
  EXPECT_EQ(j["findings"][2]["status"], "FAIL");
  std::string text = CheckText(findings);
  EXPECT_NE(text.find("FAIL  C: bad\n      fix: do y\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("1 passed, 1 warning, 2 failed"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace devpass::cli
