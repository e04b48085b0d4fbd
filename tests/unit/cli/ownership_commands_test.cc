// Device ownership as the commands show and enforce it: `status` lists the
// guest that owns each device, `unhide` refuses a device of a live guest, and
// the hook before every command gives back the devices of guests that are
// gone. Run as main.cc runs them, against a fake tree with the real Kernel
// (plain file writes), so only paths that write nothing to the kernel are
// exercised; ownership itself is tested in tests/unit/assign.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/fs.h"
#include "base/lock.h"
#include "cli/commands.h"
#include "fake_host.h"
#include "hiding/ledger.h"
#include "run_devpass.h"

namespace devpass::cli {
namespace {

using devpass::testing::FakeHost;

// A ledger with the edu device hidden on vfio-pci and assigned to guest
// 'web' (pid 4242, started at tick 777).
constexpr char kAssignedLedger[] = R"({"version": 1, "devices": [
  {"address": "0000:00:05.0", "stub": "vfio-pci", "original_driver": "",
   "ids": "1234:11e8", "persisted": false, "hidden_since": "2026-11-25T04:00:00Z",
   "assignment": {"guest": "web", "pid": 4242, "start_time": 777,
                  "since": "2026-11-25T04:13:28Z", "managed": false}}]})";

class OwnershipCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.AddDriver("vfio-pci");
    host_.AddDevice({.bdf = "0000:00:05.0",
                     .vendor = 0x1234,
                     .device = 0x11e8,
                     .driver = "vfio-pci",
                     .iommu_group = 6});
    host_.WriteFile("var/lib/devpass/ledger.json", kAssignedLedger);
  }
  // proc(5) stat of a process started at `start_time` (field 22).
  void WriteProc(int pid, uint64_t start_time) {
    std::string line = fmt::format("{} (devpass) S", pid);
    for (int field = 4; field <= 52; ++field) {
      line += " " + (field == 22 ? std::to_string(start_time)
                                 : std::to_string(field));
    }
    host_.WriteFile(fmt::format("proc/{}/stat", pid), line + "\n");
  }
  std::optional<hiding::Assignment> AssignmentNow() {
    auto ledger = hiding::Ledger::Load(host_.root());
    if (!ledger || ledger->entries().empty()) return std::nullopt;
    return ledger->entries()[0].assignment;
  }
  FakeHost host_;
};

TEST_F(OwnershipCommandsTest, StatusJsonShowsTheLiveOwner) {
  WriteProc(4242, 777);
  CliRun r = RunDevpass(host_, {"status", "--json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["hidden"].size(), 1u);
  const auto& a = j["hidden"][0]["assignment"];
  ASSERT_TRUE(a.is_object()) << r.out;
  EXPECT_EQ(a["guest"], "web");
  EXPECT_EQ(a["pid"], 4242);
  EXPECT_EQ(a["start_time"], 777);
  EXPECT_EQ(a["since"], "2026-11-25T04:13:28Z");
  EXPECT_EQ(a["managed"], false);
  EXPECT_EQ(a["adopted"], false);
  EXPECT_EQ(a["alive"], true);
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(OwnershipCommandsTest, StatusTextNamesTheGuest) {
  WriteProc(4242, 777);
  CliRun r = RunDevpass(host_, {"status"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_NE(r.out.find(
                "assigned: guest 'web' (pid 4242, since 2026-11-25T04:13:28Z)"),
            std::string::npos)
      << r.out;
}

TEST_F(OwnershipCommandsTest, StatusShowsADeadOwnerItCouldNotRecoverYet) {
  // Another devpass holds the lock, so the hook cannot recover now.
  auto lock = FileLock::Acquire(host_.root());
  ASSERT_TRUE(lock);
  CliRun r = RunDevpass(host_, {"status", "--json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const auto& a = j["hidden"][0]["assignment"];
  EXPECT_EQ(a["alive"], false);
  EXPECT_EQ(a["owner_detail"], "pid 4242 no longer exists");
  EXPECT_NE(
      r.err.find("cannot take the devpass lock to give back devices of guests "
                 "that are gone"),
      std::string::npos)
      << r.err;
  EXPECT_TRUE(AssignmentNow());
}

TEST_F(OwnershipCommandsTest, TheNextCommandRecoversADeadOwnersDevice) {
  WriteProc(4242, 999);  // pid 4242 was reused by another process
  CliRun r = RunDevpass(host_, {"status"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_NE(
      r.err.find(
          "devpass: recovered: 0000:00:05.0 was assigned to guest 'web' "
          "(pid 4242, since 2026-11-25T04:13:28Z), which is gone (pid 4242 "
          "now belongs to another process"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("stays hidden on vfio-pci, as before the run"),
            std::string::npos);
  EXPECT_FALSE(AssignmentNow());
  EXPECT_NE(r.out.find("assigned: -"), std::string::npos) << r.out;
}

TEST_F(OwnershipCommandsTest, UnhideRefusesADeviceOfALiveGuest) {
  WriteProc(4242, 777);
  CliRun r = RunDevpass(host_, {"unhide", "0000:00:05.0"});
  EXPECT_EQ(r.exit_code, kExitError);
  EXPECT_NE(
      r.err.find("devpass: error: 0000:00:05.0 is assigned to guest 'web' (pid "
                 "4242, since 2026-11-25T04:13:28Z); stop that guest first"),
      std::string::npos)
      << r.err;
  EXPECT_EQ(ReadLinkName(host_.Path("sys/bus/pci/devices/0000:00:05.0/driver"))
                .value_or(""),
            "vfio-pci");
  EXPECT_TRUE(AssignmentNow());
}

}  // namespace
}  // namespace devpass::cli
