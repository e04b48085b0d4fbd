#pragma once

// The hiding tests' fake machine (tests/unit/hiding/test_host.h) plus fake
// processes for the ownership tests: <root>/proc/<pid>/stat with a start
// time and state, and a boot id, so live, dead, reused and zombie owners
// can be simulated; and the OwnershipTest fixture.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "assign/ownership.h"
#include "base/fs.h"
#include "hiding/ledger.h"
#include "kernel_sim.h"
#include "test_host.h"

namespace devpass::testing {

inline constexpr uint64_t kSelfStart = 123456;
inline constexpr char kBootId[] = "6a3c6b9e-1c1f-4f5e-9a55-0d2f1e3b7c11";

// proc(5) stat line: comm in parentheses, state, then fields 4..52, with
// `start_time` as field 22.
inline void WriteProc(FakeHost& host, int pid, uint64_t start_time,
                      char state = 'S', const std::string& comm = "devpass") {
  std::string line = fmt::format("{} ({}) {}", pid, comm, state);
  for (int field = 4; field <= 52; ++field) {
    line += " " +
            (field == 22 ? std::to_string(start_time) : std::to_string(field));
  }
  host.WriteFile(fmt::format("proc/{}/stat", pid), line + "\n");
}

inline void RemoveProc(FakeHost& host, int pid) {
  std::filesystem::remove_all(host.Path(fmt::format("proc/{}", pid)));
}

inline int SelfPid() { return static_cast<int>(::getpid()); }

// This test process as a live devpass, and the boot it runs in.
inline void WriteSelfAndBoot(FakeHost& host) {
  WriteProc(host, SelfPid(), kSelfStart);
  host.WriteFile("proc/sys/kernel/random/boot_id", std::string(kBootId) + "\n");
}

// An assignment as another devpass would have recorded it.
inline hiding::Assignment OwnerRecord(const std::string& guest, int pid,
                                      uint64_t start_time, bool managed) {
  hiding::Assignment a;
  a.guest = guest;
  a.pid = pid;
  a.since = "2026-11-25T04:13:28Z";
  a.start_time = start_time;
  a.boot_id = kBootId;
  a.managed = managed;
  return a;
}

inline const hiding::LedgerEntry* FindEntry(const hiding::Ledger& ledger,
                                            const std::string& bdf) {
  return ledger.Find(*PciAddress::Parse(bdf));
}

using assign::Claim;
using assign::ClaimOptions;
using assign::RecoverStaleAssignments;
using assign::ReleasedDevice;
using Outcome = ReleasedDevice::Outcome;

inline bool Has(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class OwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BuildTestHost(host_);
    WriteSelfAndBoot(host_);
  }

  Result<Claim> Acquire(std::vector<std::string> bdfs,
                        const std::string& guest = "web",
                        ClaimOptions options = {}) {
    std::vector<PciAddress> addrs;
    for (const auto& b : bdfs) addrs.push_back(*PciAddress::Parse(b));
    return Claim::Acquire(host_.root(), sim_, TestConfig(), addrs, guest,
                          options);
  }
  hiding::Hider MakeHider() {
    return hiding::Hider(host_.root(), sim_, TestConfig());
  }
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

}  // namespace devpass::testing
