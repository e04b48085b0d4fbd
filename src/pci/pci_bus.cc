#include "pci/pci_bus.h"

#include <fmt/format.h>

#include <algorithm>

namespace devpass::pci {

Status PciBus::Add(int slot, int function, std::shared_ptr<PciDevice> device) {
  if (slot < 0 || slot >= kSlots || function < 0 || function >= kFunctions) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("PCI slot {}.{} is out of range (device 0-31, "
                                 "function 0-7)",
                                 slot, function));
  }
  auto& entry = functions_[slot * kFunctions + function];
  if (entry) {
    return MakeError(ErrorCode::kConflict,
                     fmt::format("guest PCI 00:{:02x}.{} is already taken by "
                                 "the {}; choose another slot",
                                 slot, function, entry->Name()));
  }
  entry = std::move(device);
  return Ok();
}

PciDevice* PciBus::Get(int bus, int slot, int function) const {
  if (bus != 0 || slot < 0 || slot >= kSlots || function < 0 ||
      function >= kFunctions) {
    return nullptr;
  }
  return functions_[slot * kFunctions + function].get();
}

void PciBus::ConfigRead(int bus, int slot, int function, uint16_t offset,
                        std::span<uint8_t> data) const {
  PciDevice* dev = Get(bus, slot, function);
  if (!dev || offset >= kConfigSize) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  dev->ConfigRead(offset, data);
}

void PciBus::ConfigWrite(int bus, int slot, int function, uint16_t offset,
                         std::span<const uint8_t> data) const {
  PciDevice* dev = Get(bus, slot, function);
  if (!dev || offset >= kConfigSize) return;
  dev->ConfigWrite(offset, data);
}

namespace {
uint16_t RegisterOf(uint32_t address, uint64_t byte) {
  return static_cast<uint16_t>(((address >> 16) & 0xf00) | (address & 0xfc)) +
         static_cast<uint16_t>(byte);
}
}  // namespace

uint32_t ConfigIo::address() const {
  std::lock_guard lock(mu_);
  return address_;
}

void ConfigIo::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset < 4) {
    // Only a dword read at 0xCF8 returns CONFIG_ADDRESS (§3.2.2.3.2).
    if (offset == 0 && data.size() == 4) {
      StoreLe(data, address_);
    } else {
      std::fill(data.begin(), data.end(), 0xff);
    }
    return;
  }
  const uint64_t byte = offset - 4;  // 0..3 within CONFIG_DATA
  if (!(address_ & 0x80000000u) || byte + data.size() > 4) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  const int bus = (address_ >> 16) & 0xff;
  const int slot = (address_ >> 11) & 0x1f;
  const int function = (address_ >> 8) & 0x7;
  const uint16_t reg = RegisterOf(address_, byte);
  bus_->ConfigRead(bus, slot, function, reg, data);
}

void ConfigIo::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset < 4) {
    if (offset == 0 && data.size() == 4) {
      // Bits 1:0 read as zero, 30:28 are reserved. Bits 27:24 are AMD's
      // extended register number (IO ECS): kept, so that an access to
      // register 256+ reads all ones instead of aliasing register 0.
      address_ = static_cast<uint32_t>(LoadLe(data)) & 0x8ffffffcu;
    }
    return;
  }
  const uint64_t byte = offset - 4;
  if (!(address_ & 0x80000000u) || byte + data.size() > 4) return;
  const int bus = (address_ >> 16) & 0xff;
  const int slot = (address_ >> 11) & 0x1f;
  const int function = (address_ >> 8) & 0x7;
  const uint16_t reg = RegisterOf(address_, byte);
  bus_->ConfigWrite(bus, slot, function, reg, data);
}

}  // namespace devpass::pci
