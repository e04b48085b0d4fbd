#pragma once

// Small file helpers for sysfs/procfs-style files. Each failure becomes an
// Error that names the path and carries errno.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace devpass {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

Result<std::string> ReadFile(const std::filesystem::path& path);
// ReadFile with trailing whitespace/newline removed (sysfs attributes).
Result<std::string> ReadTrimmed(const std::filesystem::path& path);
// Binary read of at most `max` bytes (config space).
Result<std::vector<uint8_t>> ReadBytes(const std::filesystem::path& path,
                                       size_t max);
// Parses "0x1234" / "1234" / "-1" style sysfs numbers.
Result<int64_t> ReadInt(const std::filesystem::path& path);

// Single write(2) of `data`, the way the kernel expects sysfs writes. The
// error names the path and explains common errnos.
Status WriteFile(const std::filesystem::path& path, std::string_view data);

// Write-to-temp + fsync + rename: the file is either old or new after a crash.
Status AtomicWriteFile(const std::filesystem::path& path,
                       std::string_view data);

Status EnsureDir(const std::filesystem::path& path);
Status RemoveFile(const std::filesystem::path& path);  // ENOENT is success

// Target of a symlink, or nullopt when `path` is not a symlink.
std::optional<std::filesystem::path> ReadLink(
    const std::filesystem::path& path);
// Last component of the symlink target ("driver" -> "vfio-pci").
std::optional<std::string> ReadLinkName(const std::filesystem::path& path);

bool Exists(const std::filesystem::path& path);

// Entries of a directory (names only, sorted); empty if it does not exist.
std::vector<std::string> ListDir(const std::filesystem::path& path);

std::string Trim(std::string_view s);
std::vector<std::string> SplitWords(std::string_view s);

}  // namespace devpass
