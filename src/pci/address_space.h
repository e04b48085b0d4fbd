#pragma once

// Guest address decoding: a range map from guest addresses (I/O ports or
// guest-physical MMIO addresses) to the device that answers there. A device
// is an IoHandler and only ever sees addresses relative to the start of its
// range, so the same device can be placed anywhere (a BAR moves, a UART sits
// at 0x3f8 or 0x2f8) without knowing it.
//
// This lives in the pci library (below vmm) because PCI devices are
// IoHandlers too: the configuration ports 0xCF8-0xCFF here, BARs in the
// device-assignment module.
//
// Concurrency: every vCPU thread dispatches through the same AddressSpace
// while ranges come and go at run time (a guest moving a BAR, a device
// added before start). Lookups take a shared lock, Add/Remove an exclusive
// one, and a handler is never called with the lock held: Read/Write copy
// the handler's shared_ptr out, unlock, then call it. So a handler may
// itself Add or Remove ranges, in this or another address space (a config
// write to 0xCFC that moves an I/O BAR), without deadlocking, and a range
// removed while a vCPU is inside its handler stays alive until that access
// returns (the vCPU holds a reference). A device must therefore accept an
// access that raced with its own removal.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>

#include "base/error.h"

namespace devpass::pci {

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `offset` is relative to the start of the range the handler was added at;
  // data.size() is the access width (1, 2, 4 or 8 bytes), little endian.
  virtual void Read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void Write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// Little-endian helpers for handlers.
uint64_t LoadLe(std::span<const uint8_t> data);
void StoreLe(std::span<uint8_t> data, uint64_t value);

class AddressSpace {
 public:
  // `name` ("I/O port", "MMIO") appears in error messages.
  explicit AddressSpace(std::string name) : name_(std::move(name)) {}
  AddressSpace(const AddressSpace&) = delete;
  AddressSpace& operator=(const AddressSpace&) = delete;

  // Adds [base, base + size). Fails (kConflict) if it overlaps a range
  // already present or is empty or wraps around.
  Status Add(uint64_t base, uint64_t size, std::shared_ptr<IoHandler> handler,
             std::string device_name);

  // Removes the range that starts at `base` (kNotFound if none does) and
  // hands its handler back, so that the caller decides where the last
  // reference is dropped (a handler's destructor may take other locks).
  Result<std::shared_ptr<IoHandler>> Remove(uint64_t base);

  // Drops every range. The handlers are released after the lock, so their
  // destructors may call Remove (which then finds nothing).
  void Clear();

  struct Hit {
    std::shared_ptr<IoHandler> handler;  // null when nothing is mapped
    uint64_t offset = 0;
  };
  // The handler covering `address` and the offset into its range. An access
  // that starts inside a range belongs to it (devices clip themselves).
  Hit Find(uint64_t address) const;

  struct RangeInfo {
    uint64_t base = 0;
    uint64_t size = 0;
    std::string name;
  };
  // The first range that overlaps [base, base + size), if any (for callers
  // that check a new range against several maps at once).
  std::optional<RangeInfo> FindOverlap(uint64_t base, uint64_t size) const;

  // Dispatch; returns false when nothing is mapped there. An unmapped read
  // returns all ones, as an ISA/PCI bus does when nobody drives it.
  bool Read(uint64_t address, std::span<uint8_t> data) const;
  bool Write(uint64_t address, std::span<const uint8_t> data) const;

  size_t size() const;

 private:
  struct Range {
    uint64_t size;
    std::shared_ptr<IoHandler> handler;
    std::string name;
  };
  std::optional<RangeInfo> FindOverlapLocked(uint64_t base, uint64_t end) const;

  const std::string name_;
  mutable std::shared_mutex mu_;
  std::map<uint64_t, Range> ranges_;  // keyed by base; guarded by mu_
};

}  // namespace devpass::pci
