#pragma once

// What the running host depends on: the boot GPU, block devices behind a
// mounted file system or active swap, network interfaces that carry a default
// route. Hiding such a device would take the console, the root file system
// or the network away from the host, so devpass refuses unless --force.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::host {

struct HostDependency {
  enum class Kind { kBootVga, kMountedFilesystem, kSwap, kDefaultRoute };
  Kind kind;
  // For the user: "boot GPU (boot_vga=1)", "/ is mounted from nvme0n1p2",
  // "swap on /dev/sda3", "default route via eth0".
  std::string detail;
};

std::string_view HostDependencyKindName(HostDependency::Kind kind);

class HostUsage {
 public:
  // Reads <root>/proc/self/mountinfo, proc/swaps, proc/net/route,
  // proc/net/ipv6_route, sys/dev/block, sys/class/block, sys/class/net and
  // every PCI device's boot_vga, once. Missing files mean "nothing in use".
  static Result<HostUsage> Scan(const Root& root);

  // The same without the per-device boot_vga reads, for callers that have
  // just scanned every device anyway (list): they add the boot GPU from
  // their scan with AddBootVga, saving one open per device.
  static Result<HostUsage> ScanWithoutBootVga(const Root& root);
  void AddBootVga(const PciAddress& address);

  // Empty when the host does not depend on the device.
  const std::vector<HostDependency>& DependenciesOf(
      const PciAddress& address) const;

  const std::map<PciAddress, std::vector<HostDependency>>& all() const {
    return deps_;
  }

 private:
  static Result<HostUsage> ScanImpl(const Root& root, bool read_boot_vga);
  void Add(const PciAddress& a, HostDependency::Kind kind, std::string detail);

  std::map<PciAddress, std::vector<HostDependency>> deps_;
};

}  // namespace devpass::host
