// Crash safety: a forked child runs hide or unhide with DEVPASS_CRASH_AT and
// dies by SIGKILL at that point; the parent then runs recovery against the
// same tree (the kernel simulation keeps all state in it) and checks that the
// device is whole again.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/fs.h"
#include "hiding/hider.h"
#include "test_host.h"

namespace devpass::testing {
namespace {

using hiding::Hider;

struct Point {
  const char* op;
  const char* point;
  const char* step;  // journal step the repair message names
};

// Runs `body` in a child with DEVPASS_CRASH_AT=<op>:<point>; true if the
// child was killed by SIGKILL (the crash point fired).
template <typename F>
bool CrashesAt(const std::string& spec, F body) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("DEVPASS_CRASH_AT", spec.c_str(), 1);
    body();
    ::_exit(
        0);  // the point was not reached; never run the parent's destructors
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

class CrashTest : public ::testing::TestWithParam<std::tuple<Point, bool>> {};

TEST_P(CrashTest, RecoveryLeavesTheDeviceWhole) {
  auto [p, persist] = GetParam();
  FakeHost host;
  BuildTestHost(host);
  KernelSim sim(host);
  bool hide = std::string(p.op) == "hide";
  if (!hide) {
    ASSERT_TRUE(Hider(host.root(), sim, TestConfig())
                    .Hide({kNic}, {.persist = persist}));
  }
  std::string spec = std::string(p.op) + ":" + p.point;
  ASSERT_TRUE(CrashesAt(spec, [&] {
    Hider h(host.root(), sim, TestConfig());
    if (hide) {
      (void)h.Hide({kNic}, {.persist = persist});
    } else {
      (void)h.Unhide({kNic}, {.persist = persist});
    }
  })) << spec;
  EXPECT_FALSE(hiding::Journal(host.root()).Empty()) << spec;

  // The record is visible to status until repaired.
  auto status = Hider(host.root(), sim, TestConfig()).Status();
  ASSERT_TRUE(status);
  ASSERT_EQ(status->pending.size(), 1u);
  EXPECT_EQ(status->pending[0].step, p.step);

  auto report = Hider(host.root(), sim, TestConfig()).RepairInterrupted();
  ASSERT_TRUE(report.failed.empty()) << report.failed[0];
  ASSERT_EQ(report.repaired.size(), 1u);
  std::string expected = fmt::format(
      "'{} 0000:00:03.0' was interrupted at step {}; {}: the device is on "
      "e1000e again",
      p.op, p.step, hide ? "rolled back" : "completed");
  EXPECT_EQ(report.repaired[0], expected);

  // Back on e1000e, override cleared, nothing recorded, nothing persisted.
  EXPECT_EQ(DriverOf(host, kNic), "e1000e");
  EXPECT_EQ(OverrideOf(host, kNic), "(null)");
  EXPECT_FALSE(Exists(host.Path("dev/vfio/3")));
  EXPECT_TRUE(hiding::Journal(host.root()).Empty());
  EXPECT_TRUE(hiding::Ledger::Load(host.root())->entries().empty());
  EXPECT_FALSE(Exists(host.Path("etc/devpass/hidden/0000:00:03.0")));
  EXPECT_FALSE(Exists(host.Path("etc/udev/rules.d/61-devpass.rules")));
  EXPECT_FALSE(Exists(host.Path("etc/systemd/system/devpass-restore.service")));

  // Nothing left to do; a second repair is a no-op and hiding works again.
  EXPECT_TRUE(Hider(host.root(), sim, TestConfig())
                  .RepairInterrupted()
                  .repaired.empty());
  ASSERT_TRUE(Hider(host.root(), sim, TestConfig()).Hide({kNic}, {}));
  EXPECT_EQ(DriverOf(host, kNic), "vfio-pci");
}

INSTANTIATE_TEST_SUITE_P(
    EveryPoint, CrashTest,
    ::testing::Combine(
        ::testing::Values(Point{"hide", "after-journal", "started"},
                          Point{"hide", "after-override", "override"},
                          Point{"hide", "after-unbind", "unbind"},
                          Point{"hide", "after-probe", "probe"},
                          Point{"hide", "after-verify", "verify"},
                          Point{"unhide", "after-journal", "started"},
                          Point{"unhide", "after-unbind", "unbind"},
                          Point{"unhide", "after-override-clear",
                                "override-clear"},
                          Point{"unhide", "after-rebind", "rebind"}),
        ::testing::Bool()),
    [](const auto& test_info) {
      std::string name = std::string(std::get<0>(test_info.param).op) + "_" +
                         std::get<0>(test_info.param).point +
                         (std::get<1>(test_info.param) ? "_persist" : "");
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

TEST(CrashRecoveryTest, GroupHideCrashRollsBackEveryMember) {
  FakeHost host;
  BuildTestHost(host);
  KernelSim sim(host);
  ASSERT_TRUE(CrashesAt("hide:after-verify", [&] {
    // The GPU reaches after-verify first... the audio function is done too
    // only if the crash is at the second device; either way all roll back.
    (void)Hider(host.root(), sim, TestConfig()).Hide({kGpu}, {.group = true});
  }));
  auto report = Hider(host.root(), sim, TestConfig()).RepairInterrupted();
  EXPECT_TRUE(report.failed.empty());
  EXPECT_FALSE(report.repaired.empty());
  EXPECT_EQ(DriverOf(host, kGpu), "nouveau");
  EXPECT_EQ(DriverOf(host, kAudio), "snd_hda_intel");
  EXPECT_EQ(OverrideOf(host, kGpu), "(null)");
  EXPECT_TRUE(hiding::Journal(host.root()).Empty());
}

TEST(CrashRecoveryTest, UnrepairableRecordIsKeptWithAWarning) {
  FakeHost host;
  BuildTestHost(host);
  KernelSim sim(host);
  ASSERT_TRUE(CrashesAt("hide:after-unbind", [&] {
    (void)Hider(host.root(), sim, TestConfig()).Hide({kNic}, {});
  }));
  sim.FailWrite(std::string("sys/bus/pci/devices/") + kNic + "/driver_override",
                EACCES);
  auto report = Hider(host.root(), sim, TestConfig()).RepairInterrupted();
  EXPECT_TRUE(report.repaired.empty());
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_NE(report.failed[0].find(
                "cannot repair: 'hide 0000:00:03.0' was interrupted "
                "at step unbind"),
            std::string::npos);
  EXPECT_NE(report.failed[0].find("is kept"), std::string::npos);
  EXPECT_FALSE(hiding::Journal(host.root()).Empty());
  sim.ClearFaults();
  EXPECT_EQ(
      Hider(host.root(), sim, TestConfig()).RepairInterrupted().repaired.size(),
      1u);
  EXPECT_EQ(DriverOf(host, kNic), "e1000e");
}

}  // namespace
}  // namespace devpass::testing
