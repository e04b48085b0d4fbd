#pragma once

// Device 00:00.0 of the guest: the host bridge (class 06/00). Linux's
// type-1 probe (arch/x86/pci/direct.c pci_sanity_check) accepts
// configuration mechanism #1 only when bus 0 shows a host bridge or a VGA
// device, so this function is what makes the guest find PCI without ACPI
// and without `pci=conf1`.
//
// ID 8086:0d57, as cloud-hypervisor uses: an Intel host bridge no Linux
// driver or chipset quirk binds to (the q35 8086:29c0 would let intel-agp
// probe MCH registers we do not have).

#include <mutex>

#include "pci/pci_device.h"

namespace devpass::pci {

inline constexpr uint16_t kHostBridgeVendor = 0x8086;
inline constexpr uint16_t kHostBridgeDevice = 0x0d57;

class HostBridge : public PciDevice {
 public:
  HostBridge();
  void ConfigRead(uint16_t offset, std::span<uint8_t> data) override;
  void ConfigWrite(uint16_t offset, std::span<const uint8_t> data) override;
  std::vector<Bar> Bars() const override { return {}; }
  std::string Name() const override { return "host bridge"; }

 private:
  ConfigSpace config_;
};

}  // namespace devpass::pci
