#pragma once

// Helpers shared by the hider_*.cc files; not part of the module's API.

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::hiding::internal {

// Parses and de-duplicates (keeping order); with `must_exist`, kNotFound for
// a device missing from sys/bus/pci/devices.
Result<std::vector<PciAddress>> ParseDevices(
    const Root& root, const std::vector<std::string>& args, bool must_exist);

std::string Join(const std::vector<std::string>& v, std::string_view sep);

}  // namespace devpass::hiding::internal
