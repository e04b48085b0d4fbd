#pragma once

// The guest's PCI bus 0 and configuration mechanism #1 (PCI Local Bus 3.0
// §3.2.2.3.2): the guest writes an address to CONFIG_ADDRESS (0xCF8, dword
// only) and then reads or writes CONFIG_DATA (0xCFC-0xCFF, any width):
//
//   CONFIG_ADDRESS: bit 31 enable | 23:16 bus | 15:11 device |
//                   10:8 function | 7:2 register (dword) | 1:0 zero
//
// A byte or word access to 0xCF8-0xCFB is not a configuration cycle: it is
// passed on as ordinary I/O (Linux's probe writes a byte to 0xCFB and checks
// that CONFIG_ADDRESS did not change). Reads of an absent function, of a
// bus other than 0 or with the enable bit clear return all ones, the
// master-abort value that tells software nothing is there.

#include <array>
#include <memory>
#include <mutex>

#include "base/error.h"
#include "pci/address_space.h"
#include "pci/pci_device.h"

namespace devpass::pci {

inline constexpr uint16_t kConfigAddressPort = 0xcf8;
inline constexpr uint16_t kConfigPortsSize = 8;  // 0xCF8..0xCFF

class PciBus {
 public:
  static constexpr int kSlots = 32;
  static constexpr int kFunctions = 8;

  // Places `device` at 00:slot.function. Fails if taken or out of range.
  Status Add(int slot, int function, std::shared_ptr<PciDevice> device);
  PciDevice* Get(int bus, int slot, int function) const;

  // Config access by bus/slot/function/register (used by the port decoder
  // and by tests). An absent function reads as all ones.
  void ConfigRead(int bus, int slot, int function, uint16_t offset,
                  std::span<uint8_t> data) const;
  void ConfigWrite(int bus, int slot, int function, uint16_t offset,
                   std::span<const uint8_t> data) const;

 private:
  std::array<std::shared_ptr<PciDevice>, kSlots * kFunctions> functions_;
};

// The IoHandler for ports 0xCF8-0xCFF (offsets 0..7).
class ConfigIo : public IoHandler {
 public:
  explicit ConfigIo(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

  uint32_t address() const;

 private:
  std::shared_ptr<PciBus> bus_;
  mutable std::mutex mu_;
  uint32_t address_ = 0;  // CONFIG_ADDRESS latch
};

}  // namespace devpass::pci
