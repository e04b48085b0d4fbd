#pragma once

// Errors in devpass are values, not exceptions: every fallible call returns a
// Result<T>. An Error carries a machine-readable code, the errno the kernel
// gave (0 when none), and a message written for the user: it names what failed
// (usually a path) and says what to do about it.

#include <fmt/format.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <utility>

namespace devpass {

enum class ErrorCode {
  kInvalidArgument,   // the user gave something malformed
  kNotFound,          // a device, file or driver does not exist
  kPermissionDenied,  // EACCES/EPERM: run as root or fix permissions
  kBusy,              // another devpass or the kernel holds it
  kUnsupported,       // the host or device cannot do it
  kUnsafe,            // refused to protect the host (override with --force)
  kConflict,          // state disagrees with the request
  kKernelRejected,    // a sysfs write or ioctl the kernel refused
  kIo,                // any other I/O failure
  kInternal,          // a devpass bug
};

std::string_view ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  int sys_errno = 0;
  std::string message;

  // "message (errno 13: Permission denied)".
  std::string ToString() const;
};

template <typename T>
using Result = tl::expected<T, Error>;

using Status = Result<void>;

inline tl::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, 0, std::move(message)});
}

// Maps errno to the closest ErrorCode (EACCES -> kPermissionDenied, ...).
ErrorCode CodeForErrno(int err);

inline tl::unexpected<Error> ErrnoError(int err, std::string message) {
  return tl::unexpected<Error>(
      Error{CodeForErrno(err), err, std::move(message)});
}

inline Status Ok() { return {}; }

}  // namespace devpass

// Propagation helpers: keep call sites flat without exceptions.
#define DP_CONCAT_INNER(a, b) a##b
#define DP_CONCAT(a, b) DP_CONCAT_INNER(a, b)

#define DP_RETURN_IF_ERROR(expr)                                \
  do {                                                          \
    auto dp_status_ = (expr);                                   \
    if (!dp_status_) return tl::unexpected(dp_status_.error()); \
  } while (0)

#define DP_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp) return tl::unexpected(tmp.error());  \
  lhs = std::move(*tmp)

#define DP_ASSIGN_OR_RETURN(lhs, expr) \
  DP_ASSIGN_OR_RETURN_IMPL(DP_CONCAT(dp_result_, __LINE__), lhs, expr)
