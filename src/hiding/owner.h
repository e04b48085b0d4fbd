#pragma once

// Who owns an assigned device, and whether that owner still runs. A device
// assignment (src/assign) records the owning process in the ledger; a pid
// alone is not enough, because the kernel reuses pids: the record also holds
// the process's start time (field 22 of /proc/<pid>/stat, clock ticks after
// boot, proc(5)) and the boot id (/proc/sys/kernel/random/boot_id), and the
// owner is alive only if all three still match. Everything is read through
// Root, so fake trees simulate processes with proc/<pid>/stat files.

#include <cstdint>
#include <string>

#include "base/error.h"
#include "base/root.h"
#include "hiding/ledger.h"

namespace devpass::hiding {

struct ProcessIdentity {
  int pid = 0;
  uint64_t start_time = 0;
  std::string boot_id;  // "" when unreadable
};

// Field 22 (starttime) of <root>/proc/<pid>/stat; kNotFound when there is no
// such process. A zombie (state Z or X) counts as gone: it has closed its
// files, VFIO fds included, so it holds no device any more.
Result<uint64_t> ReadStartTime(const Root& root, int pid);

// <root>/proc/sys/kernel/random/boot_id, "" when it cannot be read.
std::string ReadBootId(const Root& root);

// This process (getpid()), as an assignment records it. Fails when its stat
// file cannot be read under the root.
Result<ProcessIdentity> CurrentProcess(const Root& root);

enum class OwnerState {
  kAlive,
  kGone,       // no such pid (or a zombie)
  kReused,     // the pid runs another process (start time differs)
  kOtherBoot,  // recorded in an earlier boot
};

struct OwnerProbe {
  OwnerState state = OwnerState::kAlive;
  std::string detail;  // "pid 4242 no longer exists", "" when alive
  bool alive() const { return state == OwnerState::kAlive; }
};

// Whether the owner recorded in `a` still runs. A stat file that exists but
// cannot be read or parsed counts as alive: devpass never takes a device
// from a guest it cannot prove dead. An assignment without a start time (a
// ledger from before start times were recorded) is checked by pid alone.
OwnerProbe ProbeOwner(const Root& root, const Assignment& a);

// True when `a` was recorded by `p` (same pid, start time and boot).
bool SameOwner(const Assignment& a, const ProcessIdentity& p);

// "guest 'web' (pid 4242, since 2026-11-25T04:13:28Z)".
std::string DescribeOwner(const Assignment& a);

}  // namespace devpass::hiding
