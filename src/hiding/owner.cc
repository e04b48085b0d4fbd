#include "hiding/owner.h"

#include <unistd.h>

#include <charconv>
#include <string_view>

#include "base/fs.h"

namespace devpass::hiding {
namespace {

struct StatFields {
  char state = '?';
  uint64_t start_time = 0;
};

// proc(5): "pid (comm) state ppid ... starttime ...". comm may hold spaces
// and parentheses, so the fields are counted after the *last* ')': the
// state is field 3 and starttime field 22, i.e. the 20th word after it.
Result<StatFields> ParseStat(std::string_view text, const std::string& shown) {
  auto bad = [&] {
    return MakeError(
        ErrorCode::kIo,
        fmt::format("cannot parse {} (expected proc(5) stat fields)", shown));
  };
  size_t close = text.rfind(')');
  if (close == std::string_view::npos) return bad();
  std::vector<std::string> words = SplitWords(text.substr(close + 1));
  if (words.size() < 20 || words[0].size() != 1) return bad();
  StatFields f;
  f.state = words[0][0];
  const std::string& st = words[19];
  auto [p, ec] =
      std::from_chars(st.data(), st.data() + st.size(), f.start_time);
  if (ec != std::errc() || p != st.data() + st.size()) return bad();
  return f;
}

// The process's stat fields; kNotFound when there is no such process.
Result<StatFields> ReadStat(const Root& root, int pid) {
  auto path = root.Proc(std::to_string(pid)) / "stat";
  auto text = ReadFile(path);
  if (!text) {
    if (text.error().sys_errno == ENOENT || text.error().sys_errno == ESRCH) {
      return MakeError(ErrorCode::kNotFound,
                       fmt::format("there is no process {}", pid));
    }
    return tl::unexpected(text.error());
  }
  return ParseStat(*text, root.Display(path));
}

bool IsZombie(const StatFields& f) { return f.state == 'Z' || f.state == 'X'; }

}  // namespace

Result<uint64_t> ReadStartTime(const Root& root, int pid) {
  DP_ASSIGN_OR_RETURN(StatFields f, ReadStat(root, pid));
  if (IsZombie(f)) {
    return MakeError(ErrorCode::kNotFound,
                     fmt::format("process {} has exited (zombie)", pid));
  }
  return f.start_time;
}

std::string ReadBootId(const Root& root) {
  return ReadTrimmed(root.Proc("sys/kernel/random/boot_id")).value_or("");
}

Result<ProcessIdentity> CurrentProcess(const Root& root) {
  ProcessIdentity p;
  p.pid = static_cast<int>(::getpid());
  auto start = ReadStartTime(root, p.pid);
  if (!start) {
    return MakeError(
        start.error().code == ErrorCode::kNotFound ? ErrorCode::kIo
                                                   : start.error().code,
        fmt::format("cannot read this devpass's own start time from {} "
                    "({}); devpass records it so that a reused pid is "
                    "never taken for the owner of a device",
                    root.Display(root.Proc(std::to_string(p.pid)) / "stat"),
                    start.error().message));
  }
  p.start_time = *start;
  p.boot_id = ReadBootId(root);
  return p;
}

OwnerProbe ProbeOwner(const Root& root, const Assignment& a) {
  OwnerProbe probe;
  std::string now_boot = ReadBootId(root);
  if (!a.boot_id.empty() && !now_boot.empty() && a.boot_id != now_boot) {
    probe.state = OwnerState::kOtherBoot;
    probe.detail = fmt::format("pid {} ran in an earlier boot", a.pid);
    return probe;
  }
  if (a.pid <= 0) {
    probe.state = OwnerState::kGone;
    probe.detail = "no owner pid recorded";
    return probe;
  }
  auto stat = ReadStat(root, a.pid);
  if (!stat) {
    if (stat.error().code == ErrorCode::kNotFound) {
      probe.state = OwnerState::kGone;
      probe.detail = fmt::format("pid {} no longer exists", a.pid);
    }
    return probe;  // unreadable or unparseable: assume alive
  }
  if (IsZombie(*stat)) {
    probe.state = OwnerState::kGone;
    probe.detail = fmt::format("pid {} has exited", a.pid);
  } else if (a.start_time != 0 && stat->start_time != a.start_time) {
    probe.state = OwnerState::kReused;
    probe.detail = fmt::format(
        "pid {} now belongs to another process (started at "
        "tick {}, the owner at tick {})",
        a.pid, stat->start_time, a.start_time);
  }
  return probe;
}

bool SameOwner(const Assignment& a, const ProcessIdentity& p) {
  return a.pid == p.pid && a.start_time == p.start_time &&
         a.boot_id == p.boot_id;
}

std::string DescribeOwner(const Assignment& a) {
  return fmt::format("guest '{}' (pid {}, since {})", a.guest, a.pid,
                     a.since.empty() ? "an unknown time" : a.since);
}

}  // namespace devpass::hiding
