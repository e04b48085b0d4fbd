#pragma once

// An exclusive advisory lock (flock) on <root>/run/devpass/lock, so that two
// devpass processes never change devices or the ledger at the same time. The
// kernel drops the lock when the holder dies, even by SIGKILL.

#include <chrono>

#include "base/error.h"
#include "base/fs.h"
#include "base/root.h"

namespace devpass {

class FileLock {
 public:
  // Waits up to `timeout` for the lock, then fails with kBusy naming the
  // holder's pid if it is known.
  static Result<FileLock> Acquire(
      const Root& root,
      std::chrono::milliseconds timeout = std::chrono::seconds(30));

  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace devpass
