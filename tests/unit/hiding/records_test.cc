// Ledger and journal files: round trips, versions, corruption.

#include <gtest/gtest.h>

#include "base/fs.h"
#include "fake_host.h"
#include "hiding/journal.h"
#include "hiding/ledger.h"

namespace devpass::hiding {
namespace {

using devpass::testing::FakeHost;

TEST(LedgerTest, RoundTripKeepsEveryFieldSorted) {
  FakeHost host;
  auto ledger = Ledger::Load(host.root());
  ASSERT_TRUE(ledger);
  EXPECT_TRUE(ledger->entries().empty());
  ledger->Upsert(
      {.address = *PciAddress::Parse("0000:01:00.0"),
       .stub = "vfio-pci",
       .original_driver = "nouveau",
       .ids = "10de:1c82",
       .persisted = true,
       .hidden_since = "2026-11-25T04:00:00Z",
       .assignment = Assignment{"guest1", 42, "2026-11-25T05:00:00Z"}});
  ledger->Upsert(
      {.address = *PciAddress::Parse("0000:00:03.0"), .stub = "pciback"});
  ASSERT_TRUE(ledger->Save());
  auto again = Ledger::Load(host.root());
  ASSERT_TRUE(again);
  ASSERT_EQ(again->entries().size(), 2u);
  EXPECT_EQ(again->entries()[0].address.ToString(), "0000:00:03.0");
  const auto& e = again->entries()[1];
  EXPECT_EQ(e.original_driver, "nouveau");
  EXPECT_EQ(e.ids, "10de:1c82");
  EXPECT_TRUE(e.persisted);
  ASSERT_TRUE(e.assignment);
  EXPECT_EQ(e.assignment->guest, "guest1");
  EXPECT_EQ(e.assignment->pid, 42);
  EXPECT_FALSE(again->entries()[0].assignment);
  std::string text = *ReadFile(Ledger::PathFor(host.root()));
  EXPECT_NE(text.find("\"version\": 1"), std::string::npos);
  EXPECT_NE(text.find("\"assignment\": null"), std::string::npos);
  EXPECT_TRUE(again->Remove(*PciAddress::Parse("0000:00:03.0")));
  EXPECT_FALSE(again->Remove(*PciAddress::Parse("0000:00:03.0")));
}

TEST(LedgerTest, WrongVersionAndBadEntriesAreErrorsNamingTheFile) {
  FakeHost host;
  host.WriteFile("var/lib/devpass/ledger.json",
                 R"({"version": 7, "devices": []})");
  auto v = Ledger::Load(host.root());
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("version 7"), std::string::npos);
  host.WriteFile("var/lib/devpass/ledger.json",
                 R"({"version": 1, "devices": [{"address": "zz", "stub": "x",
                     "original_driver": ""}]})");
  auto bad = Ledger::Load(host.root());
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find(Ledger::PathFor(host.root()).string()),
            std::string::npos);
  EXPECT_NE(bad.error().message.find("corrupt"), std::string::npos);
}

TEST(JournalTest, WriteListRemoveAndCorruptRecords) {
  FakeHost host;
  Journal j(host.root());
  EXPECT_TRUE(j.Empty());
  JournalRecord r{.op = "hide",
                  .address = *PciAddress::Parse("0000:00:03.0"),
                  .stub = "vfio-pci",
                  .original_driver = "e1000e",
                  .step = "unbind",
                  .persist = true,
                  .persist_created = true,
                  .pid = 7};
  ASSERT_TRUE(j.Write(r));
  r.step = "probe";
  ASSERT_TRUE(j.Write(r));  // updated in place
  host.WriteFile("var/lib/devpass/journal/0000:00:04.0.json",
                 "{\"op\": \"hide\"");
  host.WriteFile("var/lib/devpass/journal/0000:00:05.0.json.tmp.99", "junk");
  auto scan = j.List();
  ASSERT_EQ(scan.records.size(), 1u);
  EXPECT_EQ(scan.records[0].step, "probe");
  EXPECT_EQ(scan.records[0].original_driver, "e1000e");
  EXPECT_TRUE(scan.records[0].persist_created);
  ASSERT_EQ(scan.unreadable.size(), 1u);
  EXPECT_NE(scan.unreadable[0].message.find("0000:00:04.0.json is corrupt"),
            std::string::npos);
  ASSERT_TRUE(j.Remove(r.address));
  EXPECT_EQ(j.List().records.size(), 0u);
}

}  // namespace
}  // namespace devpass::hiding
