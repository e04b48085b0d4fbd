#pragma once

// A PCI function address, "DDDD:BB:DD.F" (domain, bus, device, function), as
// the kernel names devices under /sys/bus/pci/devices.

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace devpass {

class PciAddress {
 public:
  constexpr PciAddress() = default;
  constexpr PciAddress(uint32_t domain, uint8_t bus, uint8_t device,
                       uint8_t function)
      : domain_(domain), bus_(bus), device_(device), function_(function) {}

  // Accepts "0000:01:00.0" and the short "01:00.0" (domain 0), any case.
  static Result<PciAddress> Parse(std::string_view text);

  uint32_t domain() const { return domain_; }
  uint8_t bus() const { return bus_; }
  uint8_t device() const { return device_; }
  uint8_t function() const { return function_; }

  std::string ToString() const;  // "0000:01:00.0"

  auto operator<=>(const PciAddress&) const = default;

 private:
  uint32_t domain_ = 0;
  uint8_t bus_ = 0;
  uint8_t device_ = 0;    // 0..31
  uint8_t function_ = 0;  // 0..7
};

}  // namespace devpass

template <>
struct fmt::formatter<devpass::PciAddress> : fmt::formatter<std::string> {
  auto format(const devpass::PciAddress& a, fmt::format_context& ctx) const {
    return fmt::formatter<std::string>::format(a.ToString(), ctx);
  }
};
