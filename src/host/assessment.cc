#include "host/assessment.h"

#include <fmt/format.h>

#include <map>

#include "host/iommu_group.h"

namespace devpass::host {
namespace {

// pcieport drives root and switch ports; the kernel counts them as bridges.
constexpr std::string_view kPciePortDriver = "pcieport";

}  // namespace

bool InHostUse(const PciDeviceInfo& device) {
  bool bridge = device.is_bridge() || device.driver == kPciePortDriver;
  return !device.driver.empty() && !bridge && !IsStubDriver(device.driver);
}

std::vector<DeviceAssessment> AssessDevices(
    const std::vector<PciDeviceInfo>& devices, const HostUsage& usage,
    const std::set<PciAddress>& assigned) {
  std::map<PciAddress, const PciDeviceInfo*> by_address;
  for (const auto& d : devices) by_address[d.address] = &d;

  std::vector<DeviceAssessment> out;
  out.reserve(devices.size());
  for (const auto& d : devices) {
    DeviceAssessment a;
    if (!d.iommu_group) a.reasons.push_back("no IOMMU group (IOMMU off)");
    // Host and ISA bridges (header type 0, base class 0x06) count too: they
    // are the chipset, never a device for a guest.
    bool bridge = d.is_bridge() || d.driver == kPciePortDriver ||
                  !BridgeKind(d.class_code).empty();
    if (bridge) a.reasons.push_back("bridge");
    if (assigned.count(d.address)) a.reasons.push_back("already assigned");
    a.host_dependencies = usage.DependenciesOf(d.address);
    for (const auto& dep : a.host_dependencies) {
      a.reasons.push_back("host-critical: " + dep.detail);
    }
    // A bridge is never assignable; its group's state would only be noise.
    for (const auto& member :
         bridge ? std::vector<PciAddress>{} : d.group_members) {
      auto it = by_address.find(member);
      if (it == by_address.end()) continue;  // vanished between scan steps
      if (InHostUse(*it->second))
        a.blocking.push_back({member, it->second->driver});
    }
    if (!a.blocking.empty()) {
      std::string list;
      for (const auto& b : a.blocking) {
        if (!list.empty()) list += ", ";
        list += fmt::format("{} ({})", b.address.ToString(), b.driver);
      }
      a.reasons.push_back("group shared with devices in host use: " + list);
    }
    a.assignable = a.reasons.empty();
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace devpass::host
