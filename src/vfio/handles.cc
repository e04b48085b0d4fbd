#include "vfio/handles.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace devpass::vfio {

VfioFd& VfioFd::operator=(VfioFd&& other) noexcept {
  if (this != &other) {
    Reset();
    api_ = std::move(other.api_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void VfioFd::Reset() {
  if (fd_ >= 0 && api_) api_->Close(fd_);
  fd_ = -1;
}

Mapping::Mapping(Mapping&& other) noexcept
    : api_(std::move(other.api_)),
      addr_(other.addr_),
      size_(other.size_),
      region_(other.region_),
      region_offset_(other.region_offset_) {
  other.addr_ = nullptr;
  other.size_ = 0;
}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    Reset();
    api_ = std::move(other.api_);
    addr_ = other.addr_;
    size_ = other.size_;
    region_ = other.region_;
    region_offset_ = other.region_offset_;
    other.addr_ = nullptr;
    other.size_ = 0;
  }
  return *this;
}

void Mapping::Reset() {
  if (addr_ != nullptr && api_) api_->Munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

void Mapping::Check(uint64_t offset, size_t width) const {
  if (addr_ == nullptr || offset % width != 0 || offset + width > size_) {
    std::fprintf(
        stderr,
        "devpass: internal error: MMIO access of %zu bytes at 0x%llx outside "
        "a %zu-byte mapping\n",
        width, static_cast<unsigned long long>(offset), size_);
    std::abort();
  }
}

uint32_t Mapping::Read32(uint64_t offset) const {
  Check(offset, 4);
  return *reinterpret_cast<volatile uint32_t*>(static_cast<uint8_t*>(addr_) +
                                               offset);
}

void Mapping::Write32(uint64_t offset, uint32_t value) const {
  Check(offset, 4);
  *reinterpret_cast<volatile uint32_t*>(static_cast<uint8_t*>(addr_) + offset) =
      value;
}

uint64_t Mapping::Read64(uint64_t offset) const {
  Check(offset, 8);
  return *reinterpret_cast<volatile uint64_t*>(static_cast<uint8_t*>(addr_) +
                                               offset);
}

void Mapping::Write64(uint64_t offset, uint64_t value) const {
  Check(offset, 8);
  *reinterpret_cast<volatile uint64_t*>(static_cast<uint8_t*>(addr_) + offset) =
      value;
}

Result<EventFd> EventFd::Create() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    return ErrnoError(
        err,
        "cannot create an eventfd (out of file descriptors? check "
        "`ulimit -n`)");
  }
  return EventFd(UniqueFd(fd));
}

Status EventFd::Signal(uint64_t value) const {
  if (::write(fd_.get(), &value, sizeof(value)) != sizeof(value)) {
    int err = errno;
    return ErrnoError(err, fmt::format("cannot signal eventfd {}", fd_.get()));
  }
  return Ok();
}

Result<uint64_t> EventFd::Consume() const {
  uint64_t value = 0;
  if (::read(fd_.get(), &value, sizeof(value)) != sizeof(value)) {
    int err = errno;
    if (err == EAGAIN) return 0;
    return ErrnoError(err, fmt::format("cannot read eventfd {}", fd_.get()));
  }
  return value;
}

Result<uint64_t> EventFd::Wait(std::chrono::milliseconds timeout) const {
  pollfd p{fd_.get(), POLLIN, 0};
  int r;
  do {
    r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    int err = errno;
    return ErrnoError(err, fmt::format("poll on eventfd {} failed", fd_.get()));
  }
  if (r == 0) return 0;
  return Consume();
}

}  // namespace devpass::vfio
