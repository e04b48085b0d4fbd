#pragma once

// The two tiny legacy devices a PC guest uses to leave the machine:
//
// I8042Stub (ports 0x60-0x64): only the reset line of the keyboard
// controller. Linux reboots (and, with panic=-1, restarts after a panic) by
// writing 0xFE to port 0x64 once the input buffer is empty
// (arch/x86/kernel/reboot.c, BOOT_KBD). The status register always reads
// 0x01: input buffer empty (bit 1 clear) so the reset path proceeds at once,
// output buffer "full" (bit 0) so the i8042 driver's flush never drains and
// it decides quickly that no controller is present (drivers/input/serio/
// i8042.c, i8042_controller_check) instead of timing out on self tests.
//
// PowerOffPort (port 0x501): a byte written here powers the guest off.
// Without ACPI, Linux has no way to power a PC off (`poweroff` halts), so
// the guest's init writes this port (e.g. through /dev/port); see
// docs/vmm.md "Power-off".

#include <cstdint>
#include <functional>

#include "pci/address_space.h"

namespace devpass::vmm {

inline constexpr uint8_t kI8042ResetCommand = 0xfe;

class I8042Stub : public pci::IoHandler {
 public:
  explicit I8042Stub(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}
  static constexpr uint64_t kSize = 5;  // 0x60..0x64 (0x61 is KVM's PIT speaker port)
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    for (auto& b : data) b = offset == 4 ? 0x01 : 0x00;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset == 4 && !data.empty() && data[0] == kI8042ResetCommand && on_reset_) {
      on_reset_();
    }
  }

 private:
  std::function<void()> on_reset_;
};

class PowerOffPort : public pci::IoHandler {
 public:
  explicit PowerOffPort(std::function<void(uint8_t)> on_power_off)
      : on_power_off_(std::move(on_power_off)) {}
  static constexpr uint64_t kSize = 1;
  void Read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0;
  }
  void Write(uint64_t, std::span<const uint8_t> data) override {
    if (!data.empty() && on_power_off_) on_power_off_(data[0]);
  }

 private:
  std::function<void(uint8_t)> on_power_off_;
};

}  // namespace devpass::vmm
