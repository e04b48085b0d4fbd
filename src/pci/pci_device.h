#pragma once

// A function on the guest's PCI bus, as the guest sees it through
// configuration space (PCI Local Bus 3.0 §6). The host bridge implements it
// here; the passthrough devices of module 4 implement it over VFIO.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace devpass::pci {

// Standard header registers (PCI Local Bus 3.0 §6.1).
inline constexpr uint16_t kVendorId = 0x00;
inline constexpr uint16_t kDeviceId = 0x02;
inline constexpr uint16_t kCommand = 0x04;
inline constexpr uint16_t kStatus = 0x06;
inline constexpr uint16_t kRevisionId = 0x08;
inline constexpr uint16_t kClassProgIf = 0x09;
inline constexpr uint16_t kHeaderType = 0x0e;
inline constexpr uint16_t kBar0 = 0x10;
inline constexpr uint16_t kSubsystemVendorId = 0x2c;
inline constexpr uint16_t kSubsystemId = 0x2e;
inline constexpr uint16_t kInterruptLine = 0x3c;
inline constexpr uint16_t kInterruptPin = 0x3d;
inline constexpr size_t kConfigSize = 256;  // conventional config space

struct Bar {
  enum class Kind { kIo, kMem32, kMem64 };
  int index = 0;  // 0..5
  Kind kind = Kind::kMem32;
  uint64_t size = 0;
  bool prefetchable = false;
};

class PciDevice {
 public:
  virtual ~PciDevice() = default;
  // Configuration space access; `offset` is relative to the start of this
  // function's configuration space (0..255), data.size() is 1, 2 or 4 and
  // the access never crosses a dword boundary.
  virtual void ConfigRead(uint16_t offset, std::span<uint8_t> data) = 0;
  virtual void ConfigWrite(uint16_t offset, std::span<const uint8_t> data) = 0;
  virtual std::vector<Bar> Bars() const = 0;
  virtual std::string Name() const = 0;
};

// A conventional 256-byte configuration space with a per-byte write mask:
// read-only bits keep their value whatever the guest writes.
class ConfigSpace {
 public:
  ConfigSpace() {
    bytes_.fill(0);
    writable_.fill(0);
  }

  void Set8(uint16_t off, uint8_t v) { bytes_[off] = v; }
  void Set16(uint16_t off, uint16_t v);
  void Set32(uint16_t off, uint32_t v);
  void SetWritable(uint16_t off, uint8_t mask) { writable_[off] = mask; }

  void Read(uint16_t offset, std::span<uint8_t> data) const;
  void Write(uint16_t offset, std::span<const uint8_t> data);

 private:
  std::array<uint8_t, kConfigSize> bytes_;
  std::array<uint8_t, kConfigSize> writable_;
};

}  // namespace devpass::pci
