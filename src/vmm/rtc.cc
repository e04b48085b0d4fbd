#include "vmm/rtc.h"

namespace devpass::vmm {
namespace {
uint8_t Bcd(int v) { return static_cast<uint8_t>(((v / 10) << 4) | (v % 10)); }
}  // namespace

uint8_t Rtc::Register(uint8_t index) const {
  std::time_t t = now_();
  std::tm tm{};
  gmtime_r(&t, &tm);
  switch (index) {
    case 0x00:
      return Bcd(tm.tm_sec);
    case 0x02:
      return Bcd(tm.tm_min);
    case 0x04:
      return Bcd(tm.tm_hour);
    case 0x06:
      return Bcd(tm.tm_wday + 1);
    case 0x07:
      return Bcd(tm.tm_mday);
    case 0x08:
      return Bcd(tm.tm_mon + 1);
    case 0x09:
      return Bcd(tm.tm_year % 100);
    case 0x32:
      return Bcd(19 + tm.tm_year / 100);  // century
    case 0x0a:
      return 0x26;  // 32.768 kHz, 1024 Hz; UIP (bit 7) clear
    case 0x0b:
      return 0x02;  // 24-hour, BCD, no interrupts
    case 0x0c:
      return 0x00;  // no interrupt flags
    case 0x0d:
      return 0x80;  // VRT: RAM and time valid
    default:
      return ram_[index & 0x7f];
  }
}

void Rtc::Read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  for (auto& b : data) b = offset == 1 ? Register(index_) : index_;
}

void Rtc::Write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (data.empty()) return;
  if (offset == 0) {
    index_ = data[0] & 0x7f;
  } else if (index_ > 0x0d) {
    ram_[index_] = data[0];  // CMOS RAM; clock registers are read-only here
  }
}

}  // namespace devpass::vmm
