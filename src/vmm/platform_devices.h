#pragma once

// The small devices a PC guest uses to leave the machine:
//
// I8042Stub (ports 0x60-0x64): only the reset line of the keyboard
// controller. Linux reboots (and, with panic=-1, restarts after a panic) by
// writing 0xFE to port 0x64 once the input buffer is empty
// (arch/x86/kernel/reboot.c, BOOT_KBD); the FADT names the same port and
// value as its RESET_REG, so the first method Linux tries under ACPI
// (BOOT_ACPI) lands here too. The status register always reads
// 0x01: input buffer empty (bit 1 clear) so the reset path proceeds at once,
// output buffer "full" (bit 0) so the i8042 driver's flush never drains and
// it decides quickly that no controller is present (drivers/input/serio/
// i8042.c, i8042_controller_check) instead of timing out on self tests.
//
// PowerOffPort (port 0x501): a byte written here powers the guest off.
// Without ACPI (`acpi=off`), Linux has no way to power a PC off (`poweroff`
// halts), so a guest can write this port (e.g. through /dev/port); see
// docs/vmm.md "Power-off".
//
// AcpiPmBlock (ports 0x600-0x605, layout::kAcpiPm1aEventPort): the ACPI
// fixed-hardware PM1a registers the FADT points at (ACPI 6.5 §4.8.3):
//   +0 PM1_STS  no event is ever pending: reads 0, write-1-to-clear ignored
//   +2 PM1_EN   plain read/write, so that ACPICA sees the enable bits it
//               sets stick (the global lock and RTC events) and does not
//               report missing hardware
//   +4 PM1_CNT  SCI_EN (bit 0) always reads 1; SLP_TYP (bits 12:10) is
//               kept; SLP_EN (bit 13) is write-only: written with \_S5's
//               SLP_TYP, it powers the guest off (Linux's poweroff,
//               acpi_hw_legacy_sleep, writes SLP_TYP, then SLP_TYP|SLP_EN)
// Accesses of any width and alignment are taken byte by byte.

#include <cstdint>
#include <functional>
#include <mutex>

#include "pci/address_space.h"
#include "vmm/acpi.h"

namespace devpass::vmm {

inline constexpr uint8_t kI8042ResetCommand = 0xfe;

class I8042Stub : public pci::IoHandler {
 public:
  explicit I8042Stub(std::function<void()> on_reset)
      : on_reset_(std::move(on_reset)) {}
  static constexpr uint64_t kSize =
      5;  // 0x60..0x64 (0x61 is KVM's PIT speaker port)
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    for (auto& b : data) b = offset == 4 ? 0x01 : 0x00;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset == 4 && !data.empty() && data[0] == kI8042ResetCommand &&
        on_reset_) {
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

class AcpiPmBlock : public pci::IoHandler {
 public:
  AcpiPmBlock(uint8_t s5_sleep_type, std::function<void()> on_power_off)
      : s5_sleep_type_(s5_sleep_type), on_power_off_(std::move(on_power_off)) {}
  static constexpr uint64_t kSize = 6;
  static constexpr uint64_t kEnableOffset = 2;
  static constexpr uint64_t kControlOffset = 4;

  void Read(uint64_t offset, std::span<uint8_t> data) override {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < data.size(); ++i) data[i] = ByteAt(offset + i);
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    bool power_off = false;
    {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < data.size(); ++i) {
        power_off |= WriteByte(offset + i, data[i]);
      }
    }
    if (power_off && on_power_off_) on_power_off_();
  }

 private:
  uint8_t ByteAt(uint64_t off) const {  // mu_ held
    switch (off) {
      case kEnableOffset:
        return static_cast<uint8_t>(enable_);
      case kEnableOffset + 1:
        return static_cast<uint8_t>(enable_ >> 8);
      case kControlOffset:
        return static_cast<uint8_t>(control_ | kPm1SciEn);
      case kControlOffset + 1:
        return static_cast<uint8_t>(control_ >> 8);
      default:
        return 0;  // PM1_STS
    }
  }
  // True when the write asks for S5.
  bool WriteByte(uint64_t off, uint8_t v) {  // mu_ held
    switch (off) {
      case kEnableOffset:
        enable_ = static_cast<uint16_t>((enable_ & 0xff00) | v);
        return false;
      case kEnableOffset + 1:
        enable_ = static_cast<uint16_t>((enable_ & 0x00ff) | (v << 8));
        return false;
      case kControlOffset:
        control_ = static_cast<uint16_t>((control_ & 0xff00) | v);
        return false;
      case kControlOffset + 1: {
        const uint16_t high = static_cast<uint16_t>(v << 8);
        control_ =
            static_cast<uint16_t>((control_ & 0x00ff) | (high & ~kPm1SlpEn));
        const int slp_typ = (high & kPm1SlpTypMask) >> kPm1SlpTypShift;
        // Only S5 is advertised (\_S5 alone), so no other state is asked for.
        return (high & kPm1SlpEn) != 0 && slp_typ == s5_sleep_type_;
      }
      default:
        return false;  // PM1_STS: nothing to clear
    }
  }

  const uint8_t s5_sleep_type_;
  std::function<void()> on_power_off_;
  std::mutex mu_;
  uint16_t enable_ = 0;
  uint16_t control_ = 0;
};
static_assert(layout::kAcpiPm1aControlPort ==
              layout::kAcpiPm1aEventPort + AcpiPmBlock::kControlOffset);

}  // namespace devpass::vmm
