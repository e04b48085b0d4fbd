#pragma once

// A simulation of the kernel's PCI binding rules over a FakeHost tree, behind
// the hiding::Kernel seam. It keeps no state of its own (everything is in the
// tree), so a forked child that dies half way and the parent that repairs
// afterwards see the same "kernel". Rules (drivers/pci/pci-driver.c,
// drivers/base/bus.c, xen-pciback, vfio):
//  - driver_override: stores the value; an empty write (or "\n") shows
//    "(null)". Writing it neither binds nor unbinds.
//  - drivers/X/unbind BDF: ENODEV unless bound to X.
//  - drivers/X/bind BDF: EBUSY if bound; ENODEV if driver_override names
//    another driver, or (no override) X's ID table (.fake_ids) lacks the
//    device; pciback also needs the BDF in its `slots`.
//  - drivers_probe BDF: if unbound, binds the override's driver when loaded,
//    else the first driver (by name) whose table matches.
//  - binding vfio-pci creates dev/vfio/<group>; EINVAL without a group.
//    Unbinding the last vfio-pci member of a group removes the node.
//  - pciback new_slot / remove_slot append to / remove from `slots`.
//  - LoadModule creates the driver directory of a known stub module.
// Faults: a write to a given path (optionally only of a given value) fails
// with a given errno; a module can be made to fail to load.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fake_host.h"
#include "hiding/kernel.h"

namespace devpass::testing {

class KernelSim : public hiding::Kernel {
 public:
  explicit KernelSim(FakeHost& host) : host_(host) {}

  Status WriteSysfs(const std::filesystem::path& path,
                    std::string_view value) override;
  Status LoadModule(std::string_view module) override;

  // `rel` is relative to the root ("sys/bus/pci/drivers_probe"). With
  // `only_value`, only writes of that (trimmed) value fail.
  void FailWrite(const std::string& rel, int err,
                 const std::string& only_value = "");
  void FailModule(const std::string& module) {
    failing_modules_.insert(module);
  }
  void ClearFaults() {
    faults_.clear();
    failing_modules_.clear();
  }
  // drivers_probe succeeds without binding anything (an asynchronous probe,
  // or a driver that declines), as the kernel does not promise a bind.
  void SetProbeBindsNothing(bool v) { probe_binds_nothing_ = v; }

  // Every write, "rel=value" (value trimmed), in order; and modules loaded.
  const std::vector<std::string>& writes() const { return writes_; }
  const std::vector<std::string>& modules() const { return modules_; }

 private:
  struct Fault {
    int err;
    std::string only_value;
  };
  Status Bind(const std::string& driver, const std::string& bdf);
  Status Unbind(const std::string& driver, const std::string& bdf);
  Status Probe(const std::string& bdf);
  bool Matches(const std::string& driver, const std::string& bdf) const;
  std::optional<std::string> GroupOf(const std::string& bdf) const;

  FakeHost& host_;
  std::map<std::string, Fault> faults_;
  std::set<std::string> failing_modules_;
  bool probe_binds_nothing_ = false;
  std::vector<std::string> writes_;
  std::vector<std::string> modules_;
};

// xen-pciback's driver directory ("pciback") with new_slot, remove_slot,
// slots, permissive.
void AddPciback(FakeHost& host);

// The device's driver ("" = unbound), override ("(null)" when clear).
std::string DriverOf(const FakeHost& host, const std::string& bdf);
std::string OverrideOf(const FakeHost& host, const std::string& bdf);

// Everything hiding can change, as one string: per device driver and
// override, /dev/vfio, pciback slots, ledger, journal, persist files.
std::string Snapshot(const FakeHost& host);

}  // namespace devpass::testing
