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

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
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

  // Adds [base, base + size). Fails (kConflict) if it overlaps a range
  // already present or is empty or wraps around.
  Status Add(uint64_t base, uint64_t size, std::shared_ptr<IoHandler> handler,
             std::string device_name);

  struct Hit {
    IoHandler* handler = nullptr;
    uint64_t offset = 0;
  };
  // The handler covering `address` and the offset into its range. An access
  // that starts inside a range belongs to it (devices clip themselves).
  Hit Find(uint64_t address) const;

  // Dispatch; returns false when nothing is mapped there. An unmapped read
  // returns all ones, as an ISA/PCI bus does when nobody drives it.
  bool Read(uint64_t address, std::span<uint8_t> data) const;
  bool Write(uint64_t address, std::span<const uint8_t> data) const;

  size_t size() const { return ranges_.size(); }

 private:
  struct Range {
    uint64_t size;
    std::shared_ptr<IoHandler> handler;
    std::string name;
  };
  std::string name_;
  std::map<uint64_t, Range> ranges_;  // keyed by base
};

}  // namespace devpass::pci
