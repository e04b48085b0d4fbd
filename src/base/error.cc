#include "base/error.h"

#include <cstring>

namespace devpass {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid-argument";
    case ErrorCode::kNotFound:
      return "not-found";
    case ErrorCode::kPermissionDenied:
      return "permission-denied";
    case ErrorCode::kBusy:
      return "busy";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kUnsafe:
      return "unsafe";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kKernelRejected:
      return "kernel-rejected";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

std::string Error::ToString() const {
  if (sys_errno == 0) return message;
  return fmt::format("{} (errno {}: {})", message, sys_errno,
                     std::strerror(sys_errno));
}

ErrorCode CodeForErrno(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      return ErrorCode::kPermissionDenied;
    case ENOENT:
    case ENODEV:
    case ENXIO:
      return ErrorCode::kNotFound;
    case EBUSY:
    case EAGAIN:
      return ErrorCode::kBusy;
    case EINVAL:
    case EEXIST:
    case ENOSPC:
      return ErrorCode::kKernelRejected;
    case ENOTSUP:
      return ErrorCode::kUnsupported;
    default:
      return ErrorCode::kIo;
  }
}

}  // namespace devpass
