#include "base/pci_address.h"

#include <charconv>

namespace devpass {
namespace {

bool ParseHex(std::string_view s, size_t max_digits, uint32_t* out) {
  if (s.empty() || s.size() > max_digits) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<PciAddress> PciAddress::Parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("'{}' is not a PCI address ({}); write it as DDDD:BB:DD.F, "
                    "for example 0000:01:00.0, as 'devpass list' shows it",
                    text, why));
  };
  std::string_view s = text;
  uint32_t domain = 0;
  size_t first = s.find(':');
  size_t second = s.find(':', first == std::string_view::npos ? 0 : first + 1);
  if (first == std::string_view::npos) return bad("no ':'");
  if (second != std::string_view::npos) {
    if (!ParseHex(s.substr(0, first), 4, &domain)) return bad("bad domain");
    s.remove_prefix(first + 1);
  }
  size_t colon = s.find(':');
  size_t dot = s.find('.');
  if (colon == std::string_view::npos || dot == std::string_view::npos ||
      dot < colon) {
    return bad("expected BB:DD.F");
  }
  uint32_t bus = 0, dev = 0, fn = 0;
  if (!ParseHex(s.substr(0, colon), 2, &bus)) return bad("bad bus");
  if (!ParseHex(s.substr(colon + 1, dot - colon - 1), 2, &dev) || dev > 31) {
    return bad("device must be 00-1f");
  }
  if (!ParseHex(s.substr(dot + 1), 1, &fn) || fn > 7) {
    return bad("function must be 0-7");
  }
  return PciAddress(domain, static_cast<uint8_t>(bus),
                    static_cast<uint8_t>(dev), static_cast<uint8_t>(fn));
}

std::string PciAddress::ToString() const {
  return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", domain_, bus_, device_,
                     function_);
}

}  // namespace devpass
