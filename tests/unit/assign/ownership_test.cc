// Exclusive ownership of assigned devices (assign/ownership.h): taking and
// releasing a claim, against the simulated kernel of the hiding tests, with
// fake processes under proc/.

#include "assign/ownership.h"

#include <gtest/gtest.h>

#include "assign_test_host.h"
#include "hiding/journal.h"

namespace devpass::testing {
namespace {

TEST_F(OwnershipTest, ManagedDeviceIsHiddenForTheRunAndGivenBack) {
  auto claim = Acquire({kNic});
  ASSERT_TRUE(claim) << claim.error().ToString();
  EXPECT_TRUE(claim->held());
  ASSERT_EQ(claim->devices().size(), 1u);
  EXPECT_TRUE(claim->devices()[0].managed);
  EXPECT_FALSE(claim->devices()[0].adopted);
  EXPECT_EQ(claim->devices()[0].original_driver, "e1000e");
  EXPECT_EQ(
      claim->devices()[0].message,
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
            "0000:00:05.0 given back to the host (no driver, as before it was "
            "hidden)");
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
            "0000:00:03.0 stays hidden on vfio-pci (it was persisted during "
            "the run)");
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
  EXPECT_EQ(
      claim->notes()[0],
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
  EXPECT_TRUE(
      Has(claim->notes()[0], "pid 4242 now belongs to another process"));
  EXPECT_TRUE(Has(claim->notes()[0], "stays hidden on vfio-pci"));
  EXPECT_EQ(Entry(kNic)->assignment->guest, "web");
}

TEST_F(OwnershipTest, NoManageRefusesADeviceThatIsNotHidden) {
  std::string before = Snapshot(host_);
  auto claim = Acquire({kNic}, "web", {.manage = false});
  ASSERT_FALSE(claim);
  EXPECT_EQ(claim.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(
      Has(claim.error().message,
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
  EXPECT_TRUE(Has(claim.error().message,
                  "cannot hide 0000:00:03.0 0000:01:00.0 for "
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
  EXPECT_TRUE(Has(claim.error().message, "rolled back"))
      << claim.error().message;
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
  EXPECT_TRUE(Has(claim.error().message,
                  "'devpass unhide 0000:00:03.0' and 'devpass "
                  "hide 0000:00:03.0'"));
  EXPECT_EQ(Snapshot(host_), before);

  // Someone else's pci-stub device: refused as well.
  host_.Unbind(kEdu);
  host_.Bind(kEdu, "pci-stub");
  auto foreign = Acquire({kEdu});
  ASSERT_FALSE(foreign);
  EXPECT_TRUE(Has(foreign.error().message,
                  "put there by something other than devpass"));
  EXPECT_EQ(DriverOf(host_, kEdu), "pci-stub");
}

TEST_F(OwnershipTest, ALedgerThatDisagreesWithTheDriverIsRefused) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {.driver = "pci-stub"}));
  host_.Unbind(kNic);
  host_.Bind(kNic, "vfio-pci");  // moved behind devpass's back
  auto claim = Acquire({kNic});
  ASSERT_FALSE(claim);
  EXPECT_TRUE(
      Has(claim.error().message,
          "the ledger says 0000:00:03.0 is hidden on pci-stub, but it is on "
          "vfio-pci"))
      << claim.error().message;
  EXPECT_FALSE(Entry(kNic)->assignment);
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

}  // namespace
}  // namespace devpass::testing
