#pragma once

// Can a device be given to a guest? The answer for every device of a scan,
// computed from the scan result itself (drivers, header types and group
// numbers are already known) so that listing thousands of devices costs no
// further reads. The group rule is the kernel's viability rule as
// host/iommu_group.h states it (IsStubDriver, bridges never block).

#include <set>
#include <string>
#include <vector>

#include "base/pci_address.h"
#include "host/host_usage.h"
#include "host/pci_scan.h"

namespace devpass::host {

struct BlockingDevice {
  PciAddress address;
  std::string driver;
};

struct DeviceAssessment {
  bool assignable = false;
  // Why not, most fundamental first; empty when assignable. Texts:
  //   "no IOMMU group (IOMMU off)"
  //   "bridge"
  //   "already assigned"
  //   "host-critical: boot GPU (boot_vga=1)"
  //   "group shared with devices in host use: 0000:00:1f.3 (snd_hda_intel),
  //   ..."
  std::vector<std::string> reasons;
  // Other members of the group that keep it from being viable.
  std::vector<BlockingDevice> blocking;
  // What the host needs this device for (from HostUsage).
  std::vector<HostDependency> host_dependencies;
};

// One assessment per device, in the order of `devices`. `assigned` holds
// the devices a guest already owns (from the hiding ledger).
std::vector<DeviceAssessment> AssessDevices(
    const std::vector<PciDeviceInfo>& devices, const HostUsage& usage,
    const std::set<PciAddress>& assigned);

// A member keeps a group from being viable when it is bound to a driver
// other than a stub and is not a bridge (drivers/vfio/group.c).
bool InHostUse(const PciDeviceInfo& device);

}  // namespace devpass::host
