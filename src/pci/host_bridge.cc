#include "pci/host_bridge.h"

namespace devpass::pci {

void ConfigSpace::Set16(uint16_t off, uint16_t v) {
  bytes_[off] = static_cast<uint8_t>(v);
  bytes_[off + 1] = static_cast<uint8_t>(v >> 8);
}

void ConfigSpace::Set32(uint16_t off, uint32_t v) {
  Set16(off, static_cast<uint16_t>(v));
  Set16(off + 2, static_cast<uint16_t>(v >> 16));
}

void ConfigSpace::Read(uint16_t offset, std::span<uint8_t> data) const {
  for (size_t i = 0; i < data.size(); ++i) {
    size_t at = offset + i;
    data[i] = at < kConfigSize ? bytes_[at] : 0xff;
  }
}

void ConfigSpace::Write(uint16_t offset, std::span<const uint8_t> data) {
  for (size_t i = 0; i < data.size(); ++i) {
    size_t at = offset + i;
    if (at >= kConfigSize) return;
    bytes_[at] = static_cast<uint8_t>((bytes_[at] & ~writable_[at]) |
                                      (data[i] & writable_[at]));
  }
}

HostBridge::HostBridge() {
  config_.Set16(kVendorId, kHostBridgeVendor);
  config_.Set16(kDeviceId, kHostBridgeDevice);
  config_.Set16(kCommand,
                0x0006);  // memory space + bus master, as firmware leaves it
  config_.SetWritable(kCommand, 0x46);  // memory, master, parity
  config_.Set8(kRevisionId, 0);
  config_.Set8(kClassProgIf, 0x00);
  config_.Set8(kClassProgIf + 1, 0x00);  // subclass: host bridge
  config_.Set8(kClassProgIf + 2, 0x06);  // base class: bridge
  config_.Set8(kHeaderType, 0x00);       // type 0, single function
  config_.Set16(kSubsystemVendorId, kHostBridgeVendor);
  config_.Set16(kSubsystemId, kHostBridgeDevice);
}

void HostBridge::ConfigRead(uint16_t offset, std::span<uint8_t> data) {
  config_.Read(offset, data);
}

void HostBridge::ConfigWrite(uint16_t offset, std::span<const uint8_t> data) {
  config_.Write(offset, data);
}

}  // namespace devpass::pci
