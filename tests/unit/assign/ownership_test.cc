// Exclusive ownership of assigned devices (assign/ownership.h) against the
// simulated kernel of the hiding tests, with fake processes under proc/.

#include "assign/ownership.h"

#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "assign_test_host.h"
#include "hiding/journal.h"

namespace devpass::testing {
namespace {

using assign::Claim;
using assign::ClaimOptions;
using assign::RecoverStaleAssignments;
using assign::ReleasedDevice;
using Outcome = ReleasedDevice::Outcome;

bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class OwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BuildTestHost(host_);
    WriteSelfAndBoot(host_);
  }

  Result<Claim> Acquire(std::vector<std::string> bdfs, const std::string& guest = "web",
                        ClaimOptions options = {}) {
    std::vector<PciAddress> addrs;
    for (const auto& b : bdfs) addrs.push_back(*PciAddress::Parse(b));
    return Claim::Acquire(host_.root(), sim_, TestConfig(), addrs, guest, options);
  }
  hiding::Hider MakeHider() { return hiding::Hider(host_.root(), sim_, TestConfig()); }
  // Hides `bdf` as a `devpass run` of another process would have: managed,
  // with that process's assignment committed with the hide.
  void HideFor(const std::string& bdf, const hiding::Assignment& a) {
    hiding::HideOptions o;
    o.assignment = a;
    auto r = MakeHider().Hide({bdf}, o);
    ASSERT_TRUE(r) << r.error().ToString();
  }
  // Records `a` on a device that is hidden already (not managed).
  void Assign(const std::string& bdf, const hiding::Assignment& a) {
    auto ledger = hiding::Ledger::Load(host_.root());
    ASSERT_TRUE(ledger);
    hiding::LedgerEntry e = *FindEntry(*ledger, bdf);
    e.assignment = a;
    ledger->Upsert(e);
    ASSERT_TRUE(ledger->Save());
  }
  hiding::Ledger Ledger() { return *hiding::Ledger::Load(host_.root()); }
  // A copy: the entry outlives the ledger it was read from.
  std::optional<hiding::LedgerEntry> Entry(const std::string& bdf) {
    hiding::Ledger ledger = Ledger();
    const hiding::LedgerEntry* e = FindEntry(ledger, bdf);
    return e ? std::optional<hiding::LedgerEntry>(*e) : std::nullopt;
  }

  FakeHost host_;
  KernelSim sim_{host_};
};

TEST_F(OwnershipTest, ManagedDeviceIsHiddenForTheRunAndGivenBack) {
  auto claim = Acquire({kNic});
  ASSERT_TRUE(claim) << claim.error().ToString();
  EXPECT_TRUE(claim->held());
  ASSERT_EQ(claim->devices().size(), 1u);
  EXPECT_TRUE(claim->devices()[0].managed);
  EXPECT_FALSE(claim->devices()[0].adopted);
  EXPECT_EQ(claim->devices()[0].original_driver, "e1000e");
  EXPECT_EQ(claim->devices()[0].message,
            "0000:00:03.0: hidden for guest 'web': e1000e -> vfio-pci (/dev/vfio/3)");
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");

  auto ledger = Ledger();
  const auto* e = FindEntry(ledger, kNic);
  ASSERT_TRUE(e);
  ASSERT_TRUE(e->assignment);
  EXPECT_EQ(e->assignment->guest, "web");
  EXPECT_EQ(e->assignment->pid, SelfPid());
  EXPECT_EQ(e->assignment->start_time, kSelfStart);
  EXPECT_EQ(e->assignment->boot_id, kBootId);
  EXPECT_TRUE(e->assignment->managed);
  EXPECT_FALSE(e->assignment->since.empty());
  EXPECT_EQ(e->original_driver, "e1000e");
  EXPECT_TRUE(hiding::Journal(host_.root()).Empty());

  auto released = claim->Release();
  ASSERT_TRUE(released) << released.error().ToString();
  EXPECT_FALSE(claim->held());
  ASSERT_EQ(released->devices.size(), 1u);
  EXPECT_TRUE(released->ok());
  EXPECT_EQ(released->devices[0].outcome, Outcome::kGivenBack);
  EXPECT_EQ(released->devices[0].message, "0000:00:03.0 given back to e1000e");
  EXPECT_EQ(released->devices[0].driver, "e1000e");
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(OverrideOf(host_, kNic), "(null)");
  EXPECT_TRUE(Ledger().entries().empty());
  EXPECT_TRUE(hiding::Journal(host_.root()).Empty());
  // A second release does nothing.
  auto again = claim->Release();
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->devices.empty());
}

TEST_F(OwnershipTest, ManagedUnboundDeviceGoesBackToNoDriver) {
  auto claim = Acquire({kEdu});
  ASSERT_TRUE(claim) << claim.error().ToString();
  auto released = claim->Release();
  ASSERT_TRUE(released);
  EXPECT_EQ(released->devices[0].message,
            "0000:00:05.0 given back to the host (no driver, as before it was hidden)");
  EXPECT_EQ(DriverOf(host_, kEdu), "");
}

TEST_F(OwnershipTest, TheDestructorReleases) {
  {
    auto claim = Acquire({kNic});
    ASSERT_TRUE(claim) << claim.error().ToString();
    Claim moved = std::move(*claim);  // the moved-from claim releases nothing
    EXPECT_FALSE(claim->held());
    EXPECT_TRUE(moved.held());
    EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  }
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_TRUE(Ledger().entries().empty());
}

TEST_F(OwnershipTest, PreHiddenDeviceIsOnlyRecordedAndStaysHidden) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {}));
  std::string hidden_since = Entry(kNic)->hidden_since;
  size_t writes = sim_.writes().size();
  auto claim = Acquire({kNic}, "web", {.manage = false});
  ASSERT_TRUE(claim) << claim.error().ToString();
  EXPECT_EQ(sim_.writes().size(), writes);  // nothing written to the kernel
  EXPECT_FALSE(claim->devices()[0].managed);
  EXPECT_EQ(claim->devices()[0].message,
            "0000:00:03.0: hidden on vfio-pci, assigned to guest 'web'");
  auto e = Entry(kNic);
  ASSERT_TRUE(e && e->assignment);
  EXPECT_FALSE(e->assignment->managed);
  EXPECT_EQ(e->assignment->pid, SelfPid());

  auto released = claim->Release();
  ASSERT_TRUE(released);
  EXPECT_EQ(released->devices[0].outcome, Outcome::kStaysHidden);
  EXPECT_EQ(released->devices[0].message,
            "0000:00:03.0 stays hidden on vfio-pci, as before the run");
  EXPECT_EQ(sim_.writes().size(), writes);
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  e = Entry(kNic);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->assignment);
  EXPECT_EQ(e->original_driver, "e1000e");
  EXPECT_EQ(e->hidden_since, hidden_since);
}

TEST_F(OwnershipTest, ManagedAndPreHiddenTogether) {
  ASSERT_TRUE(MakeHider().Hide({kEdu}, {}));
  auto claim = Acquire({kNic, kEdu, "0000:00:03.0"});  // duplicates are dropped
  ASSERT_TRUE(claim) << claim.error().ToString();
  ASSERT_EQ(claim->devices().size(), 2u);
  EXPECT_TRUE(claim->devices()[0].managed);   // 00:03.0
  EXPECT_FALSE(claim->devices()[1].managed);  // 00:05.0
  auto released = claim->Release();
  ASSERT_TRUE(released);
  ASSERT_EQ(released->devices.size(), 2u);
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(DriverOf(host_, kEdu), "vfio-pci");
  ASSERT_EQ(Ledger().entries().size(), 1u);
  EXPECT_FALSE(Ledger().entries()[0].assignment);
}

TEST_F(OwnershipTest, PersistedDuringTheRunStaysHidden) {
  auto claim = Acquire({kNic});
  ASSERT_TRUE(claim);
  // The user decides during the run to keep it hidden for good.
  auto h = MakeHider().Hide({kNic}, {.persist = true});
  ASSERT_TRUE(h) << h.error().ToString();
  ASSERT_TRUE(Entry(kNic)->assignment);  // hide keeps the owner
  auto released = claim->Release();
  ASSERT_TRUE(released);
  EXPECT_EQ(released->devices[0].message,
            "0000:00:03.0 stays hidden on vfio-pci (it was persisted during the run)");
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  EXPECT_FALSE(Entry(kNic)->assignment);
}

TEST_F(OwnershipTest, DeviceOfALiveGuestIsRefusedNamingIt) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  WriteProc(host_, 4242, 777);
  std::string before = Snapshot(host_);
  auto claim = Acquire({kEdu, kNic});
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code, ErrorCode::kBusy);
  EXPECT_EQ(claim.error().message,
            "0000:00:03.0 is assigned to guest 'db' (pid 4242, since "
            "2026-11-25T04:13:28Z); stop that guest first");
  EXPECT_EQ(Snapshot(host_), before);  // the edu device was not touched either
}

TEST_F(OwnershipTest, OurOwnLiveClaimIsRefusedToo) {
  auto first = Acquire({kNic}, "one");
  ASSERT_TRUE(first);
  auto second = Acquire({kNic}, "two");
  ASSERT_FALSE(second);
  EXPECT_TRUE(Has(second.error().message, "assigned to guest 'one'"));
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
}

TEST_F(OwnershipTest, AcquireRecoversADeadOwnerFirstAndSaysSo) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));  // pid 4242 does not exist
  auto claim = Acquire({kNic});
  ASSERT_TRUE(claim) << claim.error().ToString();
  ASSERT_EQ(claim->notes().size(), 1u);
  EXPECT_EQ(claim->notes()[0],
            "recovered: 0000:00:03.0 was assigned to guest 'db' (pid 4242, since "
            "2026-11-25T04:13:28Z), which is gone (pid 4242 no longer exists): given "
            "back to e1000e");
  // Given back, then hidden again for the new guest, which manages it now.
  EXPECT_TRUE(claim->devices()[0].managed);
  EXPECT_EQ(claim->devices()[0].original_driver, "e1000e");
  auto e = Entry(kNic);
  ASSERT_TRUE(e && e->assignment);
  EXPECT_EQ(e->assignment->guest, "web");
  ASSERT_TRUE(claim->Release());
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(OwnershipTest, AcquireRecoversAReusedPid) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {}));
  Assign(kNic, OwnerRecord("db", 4242, 777, false));
  WriteProc(host_, 4242, 999);  // pid 4242 now runs something else
  auto claim = Acquire({kNic}, "web", {.manage = false});
  ASSERT_TRUE(claim) << claim.error().ToString();
  ASSERT_EQ(claim->notes().size(), 1u);
  EXPECT_TRUE(Has(claim->notes()[0], "pid 4242 now belongs to another process"));
  EXPECT_TRUE(Has(claim->notes()[0], "stays hidden on vfio-pci"));
  EXPECT_EQ(Entry(kNic)->assignment->guest, "web");
}

TEST_F(OwnershipTest, RecoverGivesBackManagedDevicesOfADeadPid) {
  HideFor(kNic, OwnerRecord("db", 4242, 777, true));
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0],
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
  host_.WriteFile("proc/sys/kernel/random/boot_id", "another-boot\n");  // ...new boot
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_TRUE(Has((*r)[0], "which is gone (pid 4242 ran in an earlier boot)")) << (*r)[0];
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(OwnershipTest, RecoverTellsReusedAndZombieApart) {
  HideFor(kNic, OwnerRecord("a", 4242, 777, true));
  WriteProc(host_, 4242, 999);
  HideFor(kEdu, OwnerRecord("b", 4343, 555, true));
  WriteProc(host_, 4343, 555, 'Z', "qemu (x) y");  // a comm with spaces and parens
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE(Has((*r)[0], "pid 4242 now belongs to another process (started at tick "
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
  EXPECT_TRUE(Has(r.error().message,
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
  WriteProc(host_, SelfPid(), kSelfStart + 1);  // "this pid is another process now"
  auto r = RecoverStaleAssignments(host_.root(), sim_, TestConfig());
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(OwnershipTest, NoManageRefusesADeviceThatIsNotHidden) {
  std::string before = Snapshot(host_);
  auto claim = Acquire({kNic}, "web", {.manage = false});
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(Has(claim.error().message,
                  "0000:00:03.0 is not hidden (it is on e1000e); run `devpass hide "
                  "0000:00:03.0` first, or drop --no-manage"))
      << claim.error().message;
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(OwnershipTest, SecondDeviceInAGroupThatIsNotViableChangesNothing) {
  ASSERT_TRUE(MakeHider().Hide({kEdu}, {}));
  std::string before = Snapshot(host_);
  // NIC could be hidden; the GPU shares group 5 with its audio function,
  // which the host uses.
  auto claim = Acquire({kEdu, kNic, kGpu});
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(Has(claim.error().message, "cannot hide 0000:00:03.0 0000:01:00.0 for "
                                         "guest 'web'"))
      << claim.error().message;
  EXPECT_TRUE(Has(claim.error().message, "IOMMU group 5"));
  EXPECT_EQ(Snapshot(host_), before);
  EXPECT_FALSE(Entry(kEdu)->assignment);
}

TEST_F(OwnershipTest, ABindFailureOnTheSecondDeviceRollsTheFirstBack) {
  std::string before = Snapshot(host_);
  sim_.FailWrite("sys/bus/pci/drivers_probe", EIO, kEdu);
  sim_.FailWrite("sys/bus/pci/drivers/vfio-pci/bind", EIO, kEdu);
  auto claim = Acquire({kNic, kEdu});
  ASSERT_FALSE(claim);
  EXPECT_TRUE(Has(claim.error().message, "rolled back")) << claim.error().message;
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(OwnershipTest, HostCriticalDeviceNeedsForce) {
  auto refused = Acquire({kNvme});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnsafe);
  auto forced = Acquire({kNvme}, "web", {.force = true});
  ASSERT_TRUE(forced) << forced.error().ToString();
  EXPECT_TRUE(Has(forced->notes().at(0), "despite --force"));
  ASSERT_TRUE(forced->Release());
  EXPECT_EQ(DriverOf(host_, kNvme), "nvme");
}

TEST_F(OwnershipTest, DeviceOnPciStubIsRefusedNotMoved) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {.driver = "pci-stub"}));
  std::string before = Snapshot(host_);
  auto claim = Acquire({kNic});
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(Has(claim.error().message, "0000:00:03.0 is hidden on pci-stub"));
  EXPECT_TRUE(Has(claim.error().message, "'devpass unhide 0000:00:03.0' and 'devpass "
                                         "hide 0000:00:03.0'"));
  EXPECT_EQ(Snapshot(host_), before);

  // Someone else's pci-stub device: refused as well.
  host_.Unbind(kEdu);
  host_.Bind(kEdu, "pci-stub");
  auto foreign = Acquire({kEdu});
  ASSERT_FALSE(foreign);
  EXPECT_TRUE(Has(foreign.error().message, "put there by something other than devpass"));
  EXPECT_EQ(DriverOf(host_, kEdu), "pci-stub");
}

TEST_F(OwnershipTest, ForeignVfioDeviceIsAdoptedForTheRunAndLeftThere) {
  host_.Unbind(kEdu);
  host_.Bind(kEdu, "vfio-pci");  // vfio-pci.ids= at boot, or driverctl
  auto claim = Acquire({kEdu}, "web", {.manage = false});
  ASSERT_TRUE(claim) << claim.error().ToString();
  EXPECT_TRUE(claim->devices()[0].adopted);
  EXPECT_FALSE(claim->devices()[0].managed);
  auto e = Entry(kEdu);
  ASSERT_TRUE(e && e->assignment);
  EXPECT_TRUE(e->assignment->adopted);
  EXPECT_EQ(e->ids, "1234:11e8");
  auto released = claim->Release();
  ASSERT_TRUE(released);
  EXPECT_EQ(released->devices[0].message,
            "0000:00:05.0 left on vfio-pci, where it was before");
  EXPECT_EQ(DriverOf(host_, kEdu), "vfio-pci");
  EXPECT_TRUE(Ledger().entries().empty());  // as devpass found it
}

TEST_F(OwnershipTest, MissingDeviceAndEmptyNameAreRefused) {
  auto missing = Acquire({"0000:09:00.0"});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto unnamed = Acquire({kNic}, "");
  ASSERT_FALSE(unnamed);
  EXPECT_EQ(unnamed.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(OwnershipTest, ReleaseLeavesARecordThatIsNotOursAlone) {
  auto claim = Acquire({kNic});
  ASSERT_TRUE(claim);
  // Someone rewrote the record (say, recovery in a devpass that thought this
  // process dead) and another guest owns the device now.
  Assign(kNic, OwnerRecord("db", 4242, 777, true));
  WriteProc(host_, 4242, 777);
  auto released = claim->Release();
  ASSERT_TRUE(released);
  EXPECT_EQ(released->devices[0].outcome, Outcome::kNotOurs);
  EXPECT_TRUE(Has(released->devices[0].message, "is assigned to guest 'db'"));
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
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
