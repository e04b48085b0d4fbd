#pragma once

// What `devpass list` and `devpass show` print, built from a Root so tests can
// check the JSON and text without running the binary. One Listing is one
// consistent snapshot: scan, names, host usage and assessment.

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "host/assessment.h"
#include "host/host_usage.h"
#include "host/pci_names.h"
#include "host/pci_scan.h"

namespace devpass::cli {

// `--class`: a hex prefix of the 24-bit class code, matched digit-wise
// ("02" = base class, "0200" = base class + subclass, "0x0200" the same).
struct ClassFilter {
  uint32_t value = 0;  // the prefix digits
  int digits = 0;      // 2, 4 or 6
  bool Matches(uint32_t class_code) const;
};

// Accepts hex ("02", "0200", "0x020000") or a name from ClassFilterNames().
Result<ClassFilter> ParseClassFilter(std::string_view text);

// "network=02, storage=01, ..." for --help and error messages.
std::string ClassFilterHelp();

struct ListOptions {
  std::optional<ClassFilter> class_filter;
  std::optional<int> group;
  bool assignable_only = false;
};

struct DeviceNames {
  std::string vendor;  // "" when pci.ids does not know it
  std::string device;
  std::string subsystem;
  std::string class_name;
};

struct ListedDevice {
  host::PciDeviceInfo info;
  DeviceNames names;
  host::DeviceAssessment assessment;
};

struct Listing {
  std::vector<ListedDevice> devices;  // after filtering, by address
  size_t total_scanned = 0;
  bool any_iommu_group = false;  // over all devices, before filtering
  std::vector<std::string>
      warnings;  // non-fatal: host usage or ledger unreadable
};

// Devices a guest already owns, from the hiding ledger (entries with an
// assignment). A ledger that cannot be read adds a warning.
std::set<PciAddress> AssignedDevices(const Root& root,
                                     std::vector<std::string>* warnings);

Result<Listing> BuildListing(const Root& root, const ListOptions& options);

nlohmann::json DeviceJson(const ListedDevice& d);
nlohmann::json ListJson(const Listing& listing);
// The same document as ListJson(listing).dump(2), byte for byte, written
// directly: building thousands of nlohmann objects costs more than the
// whole sysfs scan, and `devpass list --json` must stay fast at scale.
std::string ListJsonText(const Listing& listing);
std::string ListText(const Listing& listing);

// Convenience for tests and the command: BuildListing + ListJson.
Result<nlohmann::json> ListJson(const Root& root, const ListOptions& options);

// "Intel Corporation Ethernet Connection I219-LM", or hex when unknown.
std::string DisplayName(const ListedDevice& d);

}  // namespace devpass::cli
