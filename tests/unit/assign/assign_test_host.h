#pragma once

// The hiding tests' fake machine (tests/unit/hiding/test_host.h) plus fake
// processes for the ownership tests: <root>/proc/<pid>/stat with a start
// time and state, and a boot id, so live, dead, reused and zombie owners
// can be simulated.

#include <unistd.h>

#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "assign/ownership.h"
#include "base/fs.h"
#include "hiding/ledger.h"
#include "test_host.h"

namespace devpass::testing {

inline constexpr uint64_t kSelfStart = 123456;
inline constexpr char kBootId[] = "6a3c6b9e-1c1f-4f5e-9a55-0d2f1e3b7c11";

// proc(5) stat line: comm in parentheses, state, then fields 4..52, with
// `start_time` as field 22.
inline void WriteProc(FakeHost& host, int pid, uint64_t start_time, char state = 'S',
                      const std::string& comm = "devpass") {
  std::string line = fmt::format("{} ({}) {}", pid, comm, state);
  for (int field = 4; field <= 52; ++field) {
    line += " " + (field == 22 ? std::to_string(start_time) : std::to_string(field));
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

}  // namespace devpass::testing
