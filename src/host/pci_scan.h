#pragma once

// Fast discovery of the PCI functions the kernel knows about, read from
// <root>/sys/bus/pci/devices/*. One pass touches only what `devpass list`
// shows: the first 64 bytes of config space (ids, class, header type), the
// `driver`, `iommu_group` and `physfn` links and a few small attributes. Every
// access is relative to a per-device directory fd (openat/readlinkat/pread),
// so the kernel resolves the bus symlink once per device instead of once per
// attribute; see docs in DEPENDENCIES.md for the measured difference.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::host {

// Header layout, config byte 0x0e bits 6:0 (PCI Local Bus 3.0 §6.1,
// PCI_HEADER_TYPE_* in include/uapi/linux/pci_regs.h).
enum class HeaderLayout : uint8_t {
  kNormal = 0,   // PCI_HEADER_TYPE_NORMAL: an endpoint function
  kBridge = 1,   // PCI_HEADER_TYPE_BRIDGE: PCI-to-PCI bridge
  kCardBus = 2,  // PCI_HEADER_TYPE_CARDBUS: CardBus bridge
  kUnknown = 0x7f,
};

// Class code 0x0604: PCI-to-PCI bridge (PCI_CLASS_BRIDGE_PCI).
inline constexpr uint16_t kClassBridgePci = 0x0604;

struct PciDeviceInfo {
  PciAddress address;
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint16_t subsystem_vendor_id = 0;
  uint16_t subsystem_device_id = 0;
  uint32_t class_code = 0;  // 24 bits: base class, subclass, prog-if
  uint8_t revision = 0;
  uint8_t header_type = 0;  // raw config byte 0x0e (bit 7 = multifunction)

  std::string driver;              // "" when unbound
  std::string driver_override;     // "" when unset (the kernel shows "(null)")
  std::optional<int> iommu_group;  // nullopt: no IOMMU group (IOMMU off)
  // Other functions in the same IOMMU group, sorted. Filled from the scan
  // result by ScanPciDevices, from the group directory by ScanPciDevice.
  std::vector<PciAddress> group_members;

  // SR-IOV: a VF names its PF; a PF lists its enabled VFs.
  std::optional<PciAddress> physfn;
  std::vector<PciAddress> virtfns;
  int sriov_totalvfs = -1;  // -1: not an SR-IOV physical function
  int sriov_numvfs = -1;

  int numa_node = -1;     // -1: no NUMA affinity reported
  bool boot_vga = false;  // the firmware's console GPU

  uint8_t base_class() const { return static_cast<uint8_t>(class_code >> 16); }
  // Base class and subclass, "0x0200" style without prog-if.
  uint16_t class_id() const { return static_cast<uint16_t>(class_code >> 8); }
  HeaderLayout layout() const;
  bool multifunction() const { return (header_type & 0x80) != 0; }
  // A bridge by header layout (type 1/2) or by class 0x0604; VFIO treats
  // bridges as harmless group members (drivers/vfio/group.c).
  bool is_bridge() const;
};

// All devices, sorted by address, with group_members filled in. A device that
// disappears during the scan (hot unplug) is skipped. Fails only when the
// devices directory itself cannot be read.
Result<std::vector<PciDeviceInfo>> ScanPciDevices(const Root& root);

// One device; kNotFound with a hint to run `devpass list` when absent.
Result<PciDeviceInfo> ScanPciDevice(const Root& root,
                                    const PciAddress& address);

// Fills group_members of every device from the iommu_group numbers of the
// scan result (no extra reads). Exposed for callers that build the list.
void ComputeGroupMembers(std::vector<PciDeviceInfo>* devices);

}  // namespace devpass::host
