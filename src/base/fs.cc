#include "base/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <system_error>

namespace devpass {

UniqueFd::~UniqueFd() { Reset(); }

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) Reset(other.Release());
  return *this;
}

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

std::string Hint(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
      return "; run devpass as root";
    case EROFS:
      return "; the file system is read-only";
    default:
      return "";
  }
}

}  // namespace

Result<std::string> ReadFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    return ErrnoError(
        err, fmt::format("cannot open {}{}", path.string(), Hint(err)));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return ErrnoError(err, fmt::format("cannot read {}", path.string()));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadTrimmed(const std::filesystem::path& path) {
  DP_ASSIGN_OR_RETURN(std::string s, ReadFile(path));
  return Trim(s);
}

Result<std::vector<uint8_t>> ReadBytes(const std::filesystem::path& path,
                                       size_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    return ErrnoError(
        err, fmt::format("cannot open {}{}", path.string(), Hint(err)));
  }
  std::vector<uint8_t> out(max);
  size_t got = 0;
  while (got < max) {
    ssize_t n =
        ::pread(fd.get(), out.data() + got, max - got, static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return ErrnoError(err, fmt::format("cannot read {}", path.string()));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

Result<int64_t> ReadInt(const std::filesystem::path& path) {
  DP_ASSIGN_OR_RETURN(std::string s, ReadTrimmed(path));
  std::string_view v = s;
  bool neg = false;
  if (!v.empty() && v.front() == '-') {
    neg = true;
    v.remove_prefix(1);
  }
  int base = 10;
  if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
    base = 16;
    v.remove_prefix(2);
  }
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), value, base);
  if (ec != std::errc() || ptr != v.data() + v.size() || v.empty()) {
    return MakeError(ErrorCode::kIo, fmt::format("{} holds '{}', not a number",
                                                 path.string(), s));
  }
  return neg ? -value : value;
}

Status WriteFile(const std::filesystem::path& path, std::string_view data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int err = errno;
    return ErrnoError(err, fmt::format("cannot open {} for writing{}",
                                       path.string(), Hint(err)));
  }
  for (;;) {
    ssize_t n = ::write(fd.get(), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      return ErrnoError(err,
                        fmt::format("the kernel refused to write '{}' to {}{}",
                                    Trim(data), path.string(), Hint(err)));
    }
    return Ok();
  }
}

Status AtomicWriteFile(const std::filesystem::path& path,
                       std::string_view data) {
  DP_RETURN_IF_ERROR(EnsureDir(path.parent_path()));
  std::filesystem::path tmp = path;
  tmp += fmt::format(".tmp.{}", ::getpid());
  {
    UniqueFd fd(
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      int err = errno;
      return ErrnoError(
          err, fmt::format("cannot create {}{}", tmp.string(), Hint(err)));
    }
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return ErrnoError(err, fmt::format("cannot write {}", tmp.string()));
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return ErrnoError(err, fmt::format("cannot sync {}", tmp.string()));
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, fmt::format("cannot rename {} to {}", tmp.string(),
                                       path.string()));
  }
  return Ok();
}

Status EnsureDir(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return ErrnoError(ec.value(), fmt::format("cannot create directory {}{}",
                                              path.string(), Hint(ec.value())));
  }
  return Ok();
}

Status RemoveFile(const std::filesystem::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    int err = errno;
    return ErrnoError(
        err, fmt::format("cannot remove {}{}", path.string(), Hint(err)));
  }
  return Ok();
}

std::optional<std::filesystem::path> ReadLink(
    const std::filesystem::path& path) {
  char buf[4096];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) return std::nullopt;
  return std::filesystem::path(std::string(buf, static_cast<size_t>(n)));
}

std::optional<std::string> ReadLinkName(const std::filesystem::path& path) {
  auto target = ReadLink(path);
  if (!target) return std::nullopt;
  return target->filename().string();
}

bool Exists(const std::filesystem::path& path) {
  return ::access(path.c_str(), F_OK) == 0 ||
         ReadLink(path).has_value();  // dangling links count
}

std::vector<std::string> ListDir(const std::filesystem::path& path) {
  std::vector<std::string> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(path, ec), end; !ec && it != end;
       it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
    s.remove_suffix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
    s.remove_prefix(1);
  }
  return std::string(s);
}

std::vector<std::string> SplitWords(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace devpass
