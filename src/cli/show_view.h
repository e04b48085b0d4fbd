#pragma once

// What `devpass show BDF` prints: everything about one device, on top of its
// `list` entry: capabilities with parsed fields, BARs, reset methods, group
// members with their drivers, and config-space parsing problems.

#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"
#include "cli/list_view.h"
#include "host/config_space.h"
#include "host/pci_resources.h"

namespace devpass::cli {

struct GroupMemberView {
  PciAddress address;
  std::string driver;
  bool bridge = false;
  bool in_host_use = false;
};

struct DeviceDetails {
  ListedDevice device;
  std::vector<GroupMemberView> group;  // other members
  host::ConfigSpace config;
  std::string config_error;  // config unreadable: why
  std::vector<host::Bar> bars;
  std::vector<std::string>
      reset_methods;  // from <dev>/reset_method; empty if absent
  std::vector<std::string> warnings;
};

// kNotFound (with the "run 'devpass list'" hint) when the device is absent.
Result<DeviceDetails> BuildDetails(const Root& root, const PciAddress& address);

// One line per capability: "64 vectors; table in BAR 0 at offset 0x2000,
// PBA in BAR 3 at offset 0x3000".
std::string CapabilitySummary(const host::Capability& cap);
nlohmann::json CapabilityJson(const host::Capability& cap);

nlohmann::json ShowJson(const DeviceDetails& details);
std::string ShowText(const DeviceDetails& details);

}  // namespace devpass::cli
