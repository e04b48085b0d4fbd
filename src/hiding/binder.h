#pragma once

// The safe binding protocol: moves one device onto a stub driver and back,
// with the kernel's rules in mind.
//
// Hide (BindToStub), in this order:
//   1. the stub's module is loaded (modprobe if sys/bus/pci/drivers/<stub>
//      is missing, then check again);
//   2. driver_override = stub: from now on only the stub may bind, so no
//      host driver can grab the device between the next two steps;
//   3. if bound, BDF -> <current driver>/unbind;
//      (xen-pciback: BDF -> pciback/new_slot, unless `slots` lists it);
//   4. BDF -> sys/bus/pci/drivers_probe;
//   5. verify the `driver` link is the stub; if not, BDF -> <stub>/bind once
//      and verify again. vfio-pci: wait up to ~1 s for /dev/vfio/<group>.
// Any failure rolls back (RollBack) and returns an error naming the step.
//
// Unhide (ReleaseFromStub): BDF -> <stub>/unbind, driver_override = "\n"
// (cleared: the kernel shows "(null)"), xen: remove_slot, then BDF ->
// drivers/<original>/bind, falling back to drivers_probe. No original driver:
// the device is left unbound, as it was before it was hidden.
//
// Both are idempotent and look at the device's actual state, so recovery can
// run them on a device left half way by a crash.

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"
#include "hiding/kernel.h"

namespace devpass::hiding {

// Called after each completed step with its name ("override", "unbind",
// "probe", "verify" for hide; "unbind", "override-clear", "rebind" for
// unhide). The hider records the step in the journal and fires crash points;
// an error aborts (and rolls back) the operation.
using StepHook = std::function<Status(std::string_view step)>;

struct BindOutcome {
  std::string driver;     // the driver bound at the end ("" = unbound)
  std::string vfio_node;  // "/dev/vfio/7" when a vfio-pci node appeared
  std::vector<std::string> warnings;
};

class Binder {
 public:
  Binder(const Root& root, Kernel& kernel,
         std::chrono::milliseconds vfio_wait = std::chrono::seconds(1));

  std::filesystem::path DeviceDir(const PciAddress& address) const;
  bool DeviceExists(const PciAddress& address) const;
  std::string CurrentDriver(const PciAddress& address) const;  // "" = unbound
  std::string Override(const PciAddress& address) const;       // "" = (null)
  std::string Ids(const PciAddress& address) const;            // "8086:100e"
  std::optional<int> IommuGroupId(const PciAddress& address) const;

  // Step 1 alone, so that callers can load modules before changing anything.
  Status EnsureStubLoaded(const StubDriver& stub);

  Result<BindOutcome> BindToStub(const PciAddress& address,
                                 const StubDriver& stub,
                                 const std::string& original_driver,
                                 const StepHook& hook);
  Result<BindOutcome> ReleaseFromStub(const PciAddress& address,
                                      const StubDriver& stub,
                                      const std::string& original_driver,
                                      const StepHook& hook);
  // Undoes a partial or complete hide: clears the override, unbinds the stub,
  // removes a pciback slot, rebinds `original_driver`. Best effort: every
  // step is tried; the first error is returned after all were tried.
  Result<std::string> RollBack(const PciAddress& address,
                               const StubDriver& stub,
                               const std::string& original_driver);

 private:
  Status Write(const std::filesystem::path& path, std::string_view value);
  bool InSlots(const PciAddress& address) const;
  // Binds `driver` through its bind file, else drivers_probe.
  Status Rebind(const PciAddress& address, const std::string& driver);

  Root root_;
  Kernel& kernel_;
  std::chrono::milliseconds vfio_wait_;
};

// "the device is on e1000e again" / "the device is unbound, as before".
std::string DescribeReturn(const std::string& final_driver,
                           const std::string& original_driver);

}  // namespace devpass::hiding
