// The hide/unhide/restore/status commands and the recovery hook, run the way
// main.cc runs them, against a fake tree with the real Kernel (plain file
// writes), so only paths that need no kernel behaviour are exercised here;
// the protocol itself is tested in tests/unit/hiding.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/lock.h"
#include "cli/commands.h"
#include "fake_host.h"
#include "hiding/journal.h"
#include "hiding/ledger.h"
#include "run_devpass.h"

namespace devpass::cli {
namespace {

using devpass::testing::FakeHost;

class HideCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.AddDriver("e1000e", {{0x8086, 0x10d3}});
    host_.AddDriver("vfio-pci");
    host_.AddDevice({.bdf = "0000:00:03.0",
                     .vendor = 0x8086,
                     .device = 0x10d3,
                     .driver = "e1000e",
                     .iommu_group = 3});
    host_.AddDevice({.bdf = "0000:00:05.0",
                     .vendor = 0x1234,
                     .device = 0x11e8,
                     .driver = "vfio-pci",
                     .iommu_group = 6});
  }
  FakeHost host_;
};

TEST_F(HideCommandsTest, BadAddressIsAUsageError) {
  CliRun r = RunDevpass(host_, {"hide", "0000:00:3g.0"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.err.find("devpass: error: '0000:00:3g.0' is not a PCI address"),
            std::string::npos);
  EXPECT_TRUE(r.out.empty());
}

TEST_F(HideCommandsTest, UnknownDriverIsRejectedByTheParser) {
  CliRun r = RunDevpass(host_, {"hide", "--driver", "nouveau", "0000:00:03.0"});
  EXPECT_EQ(r.exit_code, kExitUsage);
}

TEST_F(HideCommandsTest, MissingDeviceAsJson) {
  CliRun r = RunDevpass(host_, {"hide", "--json", "0000:09:00.0"});
  EXPECT_EQ(r.exit_code, kExitError);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["error"]["code"], "not-found");
  EXPECT_NE(j["error"]["message"].get<std::string>().find("0000:09:00.0"),
            std::string::npos);
}

TEST_F(HideCommandsTest, UnhideOfForeignStubDeviceRefuses) {
  CliRun r = RunDevpass(host_, {"unhide", "0000:00:05.0"});
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_NE(r.err.find("devpass did not hide it"), std::string::npos);
  EXPECT_EQ(ReadLinkName(host_.Path("sys/bus/pci/devices/0000:00:05.0/driver"))
                .value_or(""),
            "vfio-pci");
}

TEST_F(HideCommandsTest, StatusJsonListsLedgerAndPendingRecords) {
  hiding::JournalRecord rec{.op = "unhide",
                            .address = *PciAddress::Parse("0000:00:05.0"),
                            .stub = "vfio-pci",
                            .step = "unbind"};
  // A live devpass holds the lock: recovery must leave its record alone.
  auto lock = FileLock::Acquire(host_.root());
  ASSERT_TRUE(lock);
  ASSERT_TRUE(hiding::Journal(host_.root()).Write(rec));
  host_.WriteFile("var/lib/devpass/ledger.json",
                  R"({"version": 1, "devices": [{"address": "0000:00:05.0",
                  "stub": "vfio-pci", "original_driver": "", "ids": "1234:11e8",
                  "persisted": false, "hidden_since": "2026-11-25T04:00:00Z",
                  "assignment": null}]})");
  CliRun r = RunDevpass(host_, {"status", "--json"});
  EXPECT_EQ(r.exit_code, kExitOk);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["hidden"].size(), 1u);
  EXPECT_EQ(j["hidden"][0]["address"], "0000:00:05.0");
  EXPECT_EQ(j["hidden"][0]["current_driver"], "vfio-pci");
  EXPECT_EQ(j["hidden"][0]["drifted"], false);
  EXPECT_TRUE(j["hidden"][0]["assignment"].is_null());
  ASSERT_EQ(j["pending"].size(), 1u);
  EXPECT_EQ(j["pending"][0]["step"], "unbind");
  EXPECT_NE(r.err.find("cannot take the devpass lock"), std::string::npos);
}

TEST_F(HideCommandsTest, RecoveryRunsBeforeACommandAndSaysWhatItDid) {
  // A hide that died right after writing its journal: nothing to undo but
  // the record itself.
  hiding::JournalRecord rec{.op = "hide",
                            .address = *PciAddress::Parse("0000:00:03.0"),
                            .stub = "vfio-pci",
                            .original_driver = "e1000e"};
  ASSERT_TRUE(hiding::Journal(host_.root()).Write(rec));
  CliRun r = RunDevpass(host_, {"status"});
  EXPECT_EQ(r.exit_code, kExitOk);
  EXPECT_NE(
      r.err.find(
          "devpass: repaired: 'hide 0000:00:03.0' was interrupted at step "
          "started; rolled back: the device is on e1000e again"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("No devices are hidden by devpass."), std::string::npos);
  EXPECT_TRUE(hiding::Journal(host_.root()).Empty());
}

}  // namespace
}  // namespace devpass::cli
