// Devices of guests that are gone (assign/ownership.h,
// RecoverStaleAssignments), and what hiding does with an owned device
// (unhide, status), against the simulated kernel with fake processes.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "assign/ownership.h"
#include "assign_test_host.h"
#include "hiding/journal.h"

namespace devpass::testing {
namespace {

TEST_F(OwnershipTest, RecoverGivesBackManagedDevicesOfADeadPid) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(
      (*r)[0],
      "0000:00:03.0 was assigned to guest 'db' (pid 4242, since "
      "2026-11-25T04:13:28Z), which is gone (pid 4242 no longer exists): given "
      "back to e1000e");
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_TRUE(Ledger().entries().empty());
  EXPECT_TRUE(hiding::Journal(host_.root()).Empty());
  // Nothing left: a second run does nothing.
  auto again = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
}

TEST_F(OwnershipTest, RecoverSeesAnOwnerFromAnEarlierBoot) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  WriteProc(host_, 4242, 777);  // same pid and start time...
  host_.WriteFile("proc/sys/kernel/random/boot_id",
                  "another-boot\n");  // ...new boot
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(Has((*r)[0], "which is gone (pid 4242 ran in an earlier boot)"))
      << (*r)[0];
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(OwnershipTest, RecoverTellsReusedAndZombieApart) {
  HideFor(kNic, OwnerRecord("a", 4242, 777, true));
  WriteProc(host_, 4242, 999);
  HideFor(kEdu, OwnerRecord("b", 4343, 555, true));
  WriteProc(host_, 4343, 555, 'Z',
            "qemu (x) y");  // a comm with spaces and parens
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE(Has((*r)[0],
                  "pid 4242 now belongs to another process (started at tick "
                  "999, the owner at tick 777)"))
      << (*r)[0];
  EXPECT_TRUE(Has((*r)[1], "pid 4343 has exited")) << (*r)[1];
}

TEST_F(OwnershipTest, RecoverLeavesLiveOwnersAndUnassignedDevicesAlone) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  WriteProc(host_, 4242, 777);
  ASSERT_TRUE(MakeHider().Hide({kEdu}, {}));
  std::string before = Snapshot(host_);
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(OwnershipTest, RecoverOfAPreHiddenDeviceOnlyDropsTheRecord) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {}));
  Assign(kNic, OwnerRecord("db", 4242, 777, false));
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(Has((*r)[0], "stays hidden on vfio-pci, as before the run"));
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  ASSERT_TRUE(Entry(kNic));
  EXPECT_FALSE(Entry(kNic)->assignment);
}

TEST_F(OwnershipTest, RecoverThatCannotGiveBackKeepsTheRecord) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  sim_.FailWrite("sys/bus/pci/drivers/vfio-pci/unbind", EACCES);
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_FALSE(r);
  EXPECT_TRUE(
      Has(r.error().message,
          "devices of guests that are gone could not all be given back: "
          "0000:00:03.0 (assigned to guest 'db' (pid 4242, since "
          "2026-11-25T04:13:28Z), which is gone) could not be given back ("))
      << r.error().message;
  EXPECT_TRUE(Has(r.error().message, "next devpass command tries again"));
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  ASSERT_TRUE(Entry(kNic)->assignment);
  sim_.ClearFaults();
  auto retry = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(retry) << retry.error().ToString();
  EXPECT_EQ(retry->size(), 1u);
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(OwnershipTest, AReleaseThatCannotGiveBackLeavesItForRecovery) {
  auto claim = Acquire({kNic});
  ASSERT_TRUE(claim) << claim.error().ToString();
  sim_.FailWrite("sys/bus/pci/drivers/vfio-pci/unbind", EBUSY);
  auto released = claim->Release();
  ASSERT_TRUE(released);
  EXPECT_FALSE(released->ok());
  EXPECT_EQ(released->devices[0].outcome, Outcome::kFailed);
  EXPECT_TRUE(Has(released->devices[0].message,
                  "0000:00:03.0 could not be given back ("))
      << released->devices[0].message;
  EXPECT_TRUE(Has(released->devices[0].message, "stays hidden and recorded"));
  EXPECT_FALSE(claim->held());
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  ASSERT_TRUE(Entry(kNic)->assignment);
  EXPECT_EQ(Entry(kNic)->assignment->pid, SelfPid());
  // While this process lives, nobody takes it; once it is gone, recovery does.
  sim_.ClearFaults();
  auto early = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(early);
  EXPECT_TRUE(early->empty());
  WriteProc(host_, SelfPid(),
            kSelfStart + 1);  // "this pid is another process now"
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(OwnershipTest, UnhideRefusesADeviceOfALiveGuest) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  WriteProc(host_, 4242, 777);
  auto r = MakeHider().Unhide({kNic}, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(r.error().message,
            "0000:00:03.0 is assigned to guest 'db' (pid 4242, since "
            "2026-11-25T04:13:28Z); stop that guest first");
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  // Once the guest is gone, unhide works (and drops the record).
  RemoveProc(host_, 4242);
  auto u = MakeHider().Unhide({kNic}, {});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_TRUE(Ledger().entries().empty());
}

TEST_F(OwnershipTest, StatusReportsTheOwnerAndWhetherItLives) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  WriteProc(host_, 4242, 777);
  HideFor(kEdu, OwnerRecord("old", 4343, 1, true));
  auto s = MakeHider().Status();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->hidden.size(), 2u);
  EXPECT_TRUE(s->hidden[0].owner.alive());
  EXPECT_FALSE(s->hidden[1].owner.alive());
  EXPECT_EQ(s->hidden[1].owner.detail, "pid 4343 no longer exists");
}

TEST_F(OwnershipTest, SigkilledGuestLeavesNoDeviceBehind) {
  const int child_start = 424242;
  pid_t pid = ::fork();
  if (pid == 0) {
    // The child is a `devpass run`: it takes the NIC, then dies by SIGKILL
    // with the claim held (no destructor, no release).
    WriteProc(host_, static_cast<int>(::getpid()), child_start);
    auto claim = Acquire({kNic}, "killed");
    if (!claim) ::_exit(1);
    ::raise(SIGKILL);
    ::_exit(2);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  auto e = Entry(kNic);
  ASSERT_TRUE(e && e->assignment);
  EXPECT_EQ(e->assignment->pid, pid);
  EXPECT_EQ(e->assignment->start_time, static_cast<uint64_t>(child_start));
  // The kernel reaped it: its proc entry is gone.
  RemoveProc(host_, static_cast<int>(pid));
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(Has((*r)[0], "guest 'killed'"));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_TRUE(Ledger().entries().empty());
}

}  // namespace
}  // namespace devpass::testing
