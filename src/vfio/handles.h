#pragma once

// Small RAII owners used across the VFIO layer:
//   VfioFd   - a container/group/device fd, closed through the VfioApi that
//              opened it (so the fake records the close and its order);
//   Mapping  - an mmap of a device region, unmapped through the VfioApi;
//   EventFd  - an eventfd(2) the kernel signals for an interrupt (or that the
//              user signals to unmask INTx). Always a real eventfd, also in
//              tests: eventfd needs no privileges and lets a fake "fire" IRQs.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "base/error.h"
#include "base/fs.h"
#include "vfio/vfio_api.h"

namespace devpass::vfio {

class VfioFd {
 public:
  VfioFd() = default;
  VfioFd(std::shared_ptr<VfioApi> api, int fd)
      : api_(std::move(api)), fd_(fd) {}
  ~VfioFd() { Reset(); }
  VfioFd(VfioFd&& other) noexcept
      : api_(std::move(other.api_)), fd_(other.fd_) {
    other.fd_ = -1;
  }
  VfioFd& operator=(VfioFd&& other) noexcept;
  VfioFd(const VfioFd&) = delete;
  VfioFd& operator=(const VfioFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  std::shared_ptr<VfioApi> api_;
  int fd_ = -1;
};

// An mmapped piece of a device region (a BAR or one sparse area of it).
// Accessors are volatile: each is exactly one MMIO access of that width.
class Mapping {
 public:
  Mapping() = default;
  Mapping(std::shared_ptr<VfioApi> api, void* addr, size_t size,
          uint32_t region, uint64_t region_offset)
      : api_(std::move(api)),
        addr_(addr),
        size_(size),
        region_(region),
        region_offset_(region_offset) {}
  ~Mapping() { Reset(); }
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  void* data() const { return addr_; }
  size_t size() const { return size_; }
  uint32_t region() const { return region_; }
  uint64_t region_offset() const {
    return region_offset_;
  }  // where it starts in the region

  // Offsets are relative to the mapping; out-of-range access is a caller bug
  // and aborts (checked, since a stray MMIO write can hang real hardware).
  uint32_t Read32(uint64_t offset) const;
  void Write32(uint64_t offset, uint32_t value) const;
  uint64_t Read64(uint64_t offset) const;
  void Write64(uint64_t offset, uint64_t value) const;

  void Reset();

 private:
  void Check(uint64_t offset, size_t width) const;

  std::shared_ptr<VfioApi> api_;
  void* addr_ = nullptr;
  size_t size_ = 0;
  uint32_t region_ = 0;
  uint64_t region_offset_ = 0;
};

class EventFd {
 public:
  // Non-blocking, close-on-exec.
  static Result<EventFd> Create();

  int fd() const { return fd_.get(); }
  // Adds `value` to the counter (what the kernel does on an interrupt).
  Status Signal(uint64_t value = 1) const;
  // Reads and clears the counter; 0 when nothing was signalled.
  Result<uint64_t> Consume() const;
  // Waits up to `timeout` for a signal; returns the counter (cleared), or 0
  // on timeout.
  Result<uint64_t> Wait(std::chrono::milliseconds timeout) const;

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace devpass::vfio
