#pragma once

// Hiding that survives a reboot, the way driverctl does it:
//  - <root>/etc/devpass/hidden/<BDF>: one file per device, key=value lines
//    (stub=vfio-pci, original_driver=e1000e); the source of truth.
//  - <root>/etc/udev/rules.d/61-devpass.rules, generated from hidden/: sets
//    driver_override when the device is added, before a host driver loaded
//    from the initramfs or by udev can claim it.
//  - <root>/etc/systemd/system/devpass-restore.service, enabled through
//    sysinit.target.wants/: runs `devpass restore` early in boot, which binds
//    every persisted device to its stub and records it in the ledger.
// The rule and unit are removed when no device is persisted any more.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::hiding {

struct PersistedHide {
  PciAddress address;
  std::string stub;             // driver name
  std::string original_driver;  // "" when none
};

class Persist {
 public:
  // `devpass_binary` is written into the unit's ExecStart.
  Persist(const Root& root, std::filesystem::path devpass_binary);

  std::filesystem::path FileFor(const PciAddress& address) const;
  std::filesystem::path RulesPath() const;
  std::filesystem::path UnitPath() const;
  std::filesystem::path UnitLinkPath() const;

  Result<std::optional<PersistedHide>> Read(const PciAddress& address) const;
  // Every persisted device; a malformed file is an error naming it.
  Result<std::vector<PersistedHide>> List() const;

  // Writes the device's file and regenerates the rule and unit.
  Status Add(const PersistedHide& hide) const;
  // Removes the device's file (absent is fine) and regenerates.
  Status Remove(const PciAddress& address) const;
  // Rewrites the rule file and unit from hidden/, or removes them (and the
  // enable link) when hidden/ is empty.
  Status Regenerate() const;

 private:
  Root root_;
  std::filesystem::path binary_;
};

// The path of the running devpass (from /proc/self/exe), for ExecStart.
std::filesystem::path CurrentExecutable();

}  // namespace devpass::hiding
