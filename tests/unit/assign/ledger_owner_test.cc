// The assignment record in the ledger (old files still load, new fields
// round-trip) and how an owner is told alive from dead (hiding/owner.h).

#include <gtest/gtest.h>

#include "assign_test_host.h"
#include "hiding/owner.h"

namespace devpass::testing {
namespace {

using hiding::Assignment;
using hiding::Ledger;
using hiding::OwnerState;

TEST(AssignmentLedgerTest, AnOldLedgerWithoutTheNewFieldsLoads) {
  FakeHost host;
  // As module 1 wrote it: assignment null, or guest/pid/since only.
  host.WriteFile("var/lib/devpass/ledger.json", R"({
    "version": 1,
    "devices": [
      { "address": "0000:00:03.0", "stub": "vfio-pci", "original_driver": "e1000e",
        "ids": "8086:10d3", "persisted": false, "hidden_since": "2026-11-25T04:13:28Z",
        "assignment": null },
      { "address": "0000:00:05.0", "stub": "vfio-pci", "original_driver": "",
        "ids": "1234:11e8", "persisted": false, "hidden_since": "2026-11-25T04:13:28Z",
        "assignment": { "guest": "web", "pid": 4242, "since": "2026-11-25T05:00:00Z" } }
    ]
  })");
  auto ledger = Ledger::Load(host.root());
  ASSERT_TRUE(ledger) << ledger.error().ToString();
  ASSERT_EQ(ledger->entries().size(), 2u);
  EXPECT_FALSE(ledger->entries()[0].assignment);
  const auto& a = ledger->entries()[1].assignment;
  ASSERT_TRUE(a);
  EXPECT_EQ(a->guest, "web");
  EXPECT_EQ(a->pid, 4242);
  EXPECT_EQ(a->since, "2026-11-25T05:00:00Z");
  EXPECT_EQ(a->start_time, 0u);
  EXPECT_EQ(a->boot_id, "");
  EXPECT_FALSE(a->managed);
  EXPECT_FALSE(a->adopted);

  // Without a start time the owner is judged by its pid alone.
  WriteProc(host, 4242, 99);
  EXPECT_TRUE(hiding::ProbeOwner(host.root(), *a).alive());
  RemoveProc(host, 4242);
  EXPECT_EQ(hiding::ProbeOwner(host.root(), *a).state, OwnerState::kGone);
}

TEST(AssignmentLedgerTest, NewFieldsRoundTrip) {
  FakeHost host;
  auto ledger = Ledger::Load(host.root());
  ASSERT_TRUE(ledger);
  Assignment a = OwnerRecord("db", 4242, 18446744073709551000ull, true);
  a.adopted = true;
  ledger->Upsert({.address = *PciAddress::Parse("0000:00:03.0"),
                  .stub = "vfio-pci",
                  .original_driver = "e1000e",
                  .assignment = a});
  ASSERT_TRUE(ledger->Save());
  std::string text = *ReadFile(Ledger::PathFor(host.root()));
  EXPECT_NE(text.find("\"version\": 1"), std::string::npos);  // still version 1
  EXPECT_NE(text.find("\"managed\": true"), std::string::npos);
  auto again = Ledger::Load(host.root());
  ASSERT_TRUE(again);
  const auto& b = again->entries().at(0).assignment;
  ASSERT_TRUE(b);
  EXPECT_EQ(b->guest, "db");
  EXPECT_EQ(b->pid, 4242);
  EXPECT_EQ(b->start_time, 18446744073709551000ull);
  EXPECT_EQ(b->boot_id, kBootId);
  EXPECT_EQ(b->since, "2026-11-25T04:13:28Z");
  EXPECT_TRUE(b->managed);
  EXPECT_TRUE(b->adopted);
}

class OwnerTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteSelfAndBoot(host_); }
  FakeHost host_;
};

TEST_F(OwnerTest, StartTimeIsField22EvenWithParenthesesInTheName) {
  WriteProc(host_, 77, 31337, 'R', "a) (b c) d");
  auto t = hiding::ReadStartTime(host_.root(), 77);
  ASSERT_TRUE(t) << t.error().ToString();
  EXPECT_EQ(*t, 31337u);
  auto missing = hiding::ReadStartTime(host_.root(), 78);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(OwnerTest, CurrentProcessReadsItsOwnStatThroughTheRoot) {
  auto self = hiding::CurrentProcess(host_.root());
  ASSERT_TRUE(self) << self.error().ToString();
  EXPECT_EQ(self->pid, SelfPid());
  EXPECT_EQ(self->start_time, kSelfStart);
  EXPECT_EQ(self->boot_id, kBootId);
  RemoveProc(host_, SelfPid());
  auto none = hiding::CurrentProcess(host_.root());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("own start time"), std::string::npos);
}

TEST_F(OwnerTest, ProbeTellsEachKindOfDeadOwner) {
  Assignment a = OwnerRecord("web", 4242, 777, false);
  EXPECT_EQ(hiding::ProbeOwner(host_.root(), a).state, OwnerState::kGone);
  WriteProc(host_, 4242, 777);
  EXPECT_TRUE(hiding::ProbeOwner(host_.root(), a).alive());
  WriteProc(host_, 4242, 778);
  EXPECT_EQ(hiding::ProbeOwner(host_.root(), a).state, OwnerState::kReused);
  WriteProc(host_, 4242, 777, 'Z');
  EXPECT_EQ(hiding::ProbeOwner(host_.root(), a).state, OwnerState::kGone);
  WriteProc(host_, 4242, 777);
  host_.WriteFile("proc/sys/kernel/random/boot_id", "other\n");
  EXPECT_EQ(hiding::ProbeOwner(host_.root(), a).state, OwnerState::kOtherBoot);
}

TEST_F(OwnerTest, AStatThatCannotBeParsedCountsAsAlive) {
  // devpass never takes a device from a guest it cannot prove dead.
  host_.WriteFile("proc/4242/stat", "garbage\n");
  Assignment a = OwnerRecord("web", 4242, 777, false);
  EXPECT_TRUE(hiding::ProbeOwner(host_.root(), a).alive());
}

TEST_F(OwnerTest, SameOwnerNeedsPidStartTimeAndBoot) {
  Assignment a = OwnerRecord("web", SelfPid(), kSelfStart, false);
  auto self = *hiding::CurrentProcess(host_.root());
  EXPECT_TRUE(hiding::SameOwner(a, self));
  a.start_time += 1;
  EXPECT_FALSE(hiding::SameOwner(a, self));
  EXPECT_EQ(hiding::DescribeOwner(a),
            fmt::format("guest 'web' (pid {}, since 2026-11-25T04:13:28Z)",
                        SelfPid()));
}

}  // namespace
}  // namespace devpass::testing
