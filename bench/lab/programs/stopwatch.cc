// stopwatch: how long a VMM takes from its launch to the guest's user space.
//
//   stopwatch --marker TEXT --label WAY [--metric NAME] -- COMMAND [ARGS...]
//
// Starts COMMAND with its stdout and stderr on a pipe, copies every line to
// this program's stdout as it comes, and notes the time (CLOCK_MONOTONIC,
// from just before the fork) of the first line that contains TEXT. The guest
// prints TEXT from the first line of its init script, so the figure covers
// everything the user waits for: the VMM's setup (VFIO open, reset, the DMA
// map of guest RAM), firmware or the direct kernel boot, and the kernel's
// own boot, up to user space. Both VMMs are timed the same way.
//
// Prints "BENCH <metric> WAY <seconds>" (metric default launch.userspace)
// once COMMAND has ended, and exits with COMMAND's exit status (1 if TEXT
// never appeared, 2 on usage errors).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace {

using Clock = std::chrono::steady_clock;

int Usage() {
  std::fprintf(stderr,
               "usage: stopwatch --marker TEXT --label WAY [--metric NAME] -- "
               "COMMAND [ARGS...]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string marker, label, metric = "launch.userspace";
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= argc) return Usage();
    if (a == "--marker") {
      marker = argv[++i];
    } else if (a == "--label") {
      label = argv[++i];
    } else if (a == "--metric") {
      metric = argv[++i];
    } else {
      return Usage();
    }
  }
  if (marker.empty() || label.empty() || i >= argc) return Usage();

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("stopwatch: pipe");
    return 1;
  }
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("stopwatch: fork");
    return 1;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::execvp(argv[i], argv + i);
    std::fprintf(stderr, "stopwatch: cannot run %s: %s\n", argv[i],
                 std::strerror(errno));
    _exit(127);
  }
  ::close(fds[1]);

  // Line by line: the marker may arrive split across reads.
  std::optional<double> seconds;
  std::string line;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    auto now = Clock::now();
    for (ssize_t k = 0; k < n; ++k) {
      line.push_back(buf[k]);
      if (buf[k] != '\n') continue;
      if (!seconds && line.find(marker) != std::string::npos)
        seconds = std::chrono::duration<double>(now - t0).count();
      std::fwrite(line.data(), 1, line.size(), stdout);
      line.clear();
    }
    if (!seconds && line.find(marker) != std::string::npos)
      seconds = std::chrono::duration<double>(now - t0).count();
    std::fflush(stdout);
  }
  if (!line.empty()) std::fwrite(line.data(), 1, line.size(), stdout);
  ::close(fds[0]);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!seconds) {
    std::printf("stopwatch: \"%s\" never appeared (exit %d)\n", marker.c_str(),
                rc);
    return rc ? rc : 1;
  }
  std::printf("BENCH %s %s %.3f\n", metric.c_str(), label.c_str(), *seconds);
  return rc;
}
