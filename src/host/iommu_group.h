#pragma once

// IOMMU groups and the kernel's viability rule: VFIO lets a group be used only
// when every member is unbound, bound to vfio-pci (or a vfio variant
// driver), bound to pci-stub / pciback, or is a bridge (drivers/vfio/group.c).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::host {

struct GroupMember {
  PciAddress address;
  std::string driver;      // "" when unbound
  bool is_bridge = false;  // header type 1/2, or bound to pcieport
  // Bound to a driver other than a stub, and not a bridge: the host uses it,
  // and its presence makes the group non-viable.
  bool in_host_use = false;
};

struct IommuGroup {
  int id = -1;
  std::vector<GroupMember> members;  // sorted by address
};

// True for drivers that hold a device for VFIO without using it: vfio-pci,
// vfio variant drivers (name ends in "vfio_pci" / "vfio-pci"), pci-stub,
// pciback (xen-pciback's driver name).
bool IsStubDriver(std::string_view driver);

// The device's group, read from <dev>/iommu_group and
// sys/kernel/iommu_groups/N/devices. nullopt when the device has no
// iommu_group link (no IOMMU, or IOMMU off). kNotFound when the device does
// not exist.
Result<std::optional<IommuGroup>> ReadIommuGroup(const Root& root,
                                                 const PciAddress& address);

// True when the device is a PCI-to-PCI or CardBus bridge (or driven by
// pcieport): bridges cannot be hidden and never block a group's viability.
// kNotFound when the device does not exist.
Result<bool> IsBridge(const Root& root, const PciAddress& address);

// Every device of PCI base class 0x06 (PCI Code and ID Assignment spec §1.7)
// is a bridge of some kind: host bridge, ISA/LPC bridge, PCI-to-PCI bridge...
// None of them is a device a guest could use, and the host and ISA bridges
// are the chipset itself. Returns what kind ("host bridge", "ISA bridge", ...)
// or "" when `class_code` (24 bits) is not a bridge class. This is the policy
// rule for hiding and listing; viability keeps the kernel's narrower rule.
std::string_view BridgeKind(uint32_t class_code);

// Members other than those in `excluding` that keep the group from being
// viable (in_host_use).
std::vector<GroupMember> BlockingMembers(
    const IommuGroup& group, const std::vector<PciAddress>& excluding);

}  // namespace devpass::host
