#include "base/lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <thread>

namespace devpass {

Result<FileLock> FileLock::Acquire(const Root& root,
                                   std::chrono::milliseconds timeout) {
  auto dir = root.Run("devpass");
  DP_RETURN_IF_ERROR(EnsureDir(dir));
  auto path = dir / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) {
    int err = errno;
    return ErrnoError(
        err, fmt::format("cannot open the lock file {}; run devpass as root",
                         path.string()));
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int err = errno;
      return ErrnoError(err, fmt::format("cannot lock {}", path.string()));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string holder = ReadTrimmed(path).value_or("");
      return MakeError(
          ErrorCode::kBusy,
          fmt::format("another devpass{} holds {}; wait for it to "
                      "finish and try again",
                      holder.empty() ? "" : " (pid " + holder + ")",
                      path.string()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Record the holder for the message above; best effort.
  if (::ftruncate(fd.get(), 0) == 0) {
    std::string pid = std::to_string(::getpid()) + "\n";
    [[maybe_unused]] ssize_t n = ::pwrite(fd.get(), pid.data(), pid.size(), 0);
  }
  return FileLock(std::move(fd));
}

}  // namespace devpass
