#pragma once

// The MC146818 real-time clock and CMOS RAM of a PC (ports 0x70 index,
// 0x71 data), just enough for Linux: the time of day from the host clock in
// BCD, 24-hour mode, "update in progress" never set and the valid-RAM bit
// set. Without it, every read returns 0xFF, which Linux's rtc-cmos reads
// as an update forever in progress: its probe waited 4.4 s in the lab.
// NMI-disable (index bit 7) is ignored.

#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>

#include "pci/address_space.h"

namespace devpass::vmm {

class Rtc : public pci::IoHandler {
 public:
  // `now` returns the host's time; replaceable for tests.
  explicit Rtc(std::function<std::time_t()> now =
                   [] { return std::time(nullptr); })
      : now_(std::move(now)) {}
  static constexpr uint64_t kSize = 2;
  void Read(uint64_t offset, std::span<uint8_t> data) override;
  void Write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  uint8_t Register(uint8_t index) const;  // mu_ held
  std::function<std::time_t()> now_;
  std::mutex mu_;
  uint8_t index_ = 0;
  uint8_t ram_[128] = {};
};

}  // namespace devpass::vmm
