#pragma once

// The ledger: which devices devpass has hidden, on which stub driver, and
// which driver had them before, so that unhide can give each device back to
// exactly that driver. Stored as JSON in <root>/var/lib/devpass/ledger.json,
// replaced atomically on every change.

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::hiding {

inline constexpr int kLedgerVersion = 1;

// Device assignment (src/assign/ownership.h): which guest owns the device
// now. The owner is a process: pid, start time and boot id together tell a
// live owner from a dead one whose pid was reused (hiding/owner.h). Fields
// added after version 1 was first written are optional in the file, so older
// ledgers (guest, pid, since only) still load.
struct Assignment {
  std::string guest;
  int pid = 0;
  std::string since;        // ISO 8601, UTC
  uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat; 0 = not recorded
  std::string boot_id;  // /proc/sys/kernel/random/boot_id; "" = not recorded
  // devpass hid the device only for this assignment: releasing it gives the
  // device back to its original driver.
  bool managed = false;
  // The device was on vfio-pci without devpass (vfio-pci.ids=, driverctl):
  // its ledger entry exists only for this assignment and goes with it.
  bool adopted = false;
};

struct LedgerEntry {
  PciAddress address;
  std::string stub;  // driver name: "vfio-pci", "pci-stub", "pciback"
  std::string original_driver;  // "" when the device had no driver
  std::string ids;              // "8086:100e"
  bool persisted = false;
  std::string hidden_since;  // ISO 8601, UTC
  std::optional<Assignment> assignment;
};

class Ledger {
 public:
  // A missing file is an empty ledger. A file that cannot be parsed is an
  // error naming it: devpass never silently forgets which devices it hid.
  static Result<Ledger> Load(const Root& root);
  static std::filesystem::path PathFor(const Root& root);

  Status Save() const;

  const LedgerEntry* Find(const PciAddress& address) const;
  void Upsert(LedgerEntry entry);
  // True if there was an entry.
  bool Remove(const PciAddress& address);
  const std::vector<LedgerEntry>& entries() const { return entries_; }

 private:
  explicit Ledger(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
  std::vector<LedgerEntry> entries_;  // sorted by address
};

// "2026-11-25T04:13:28Z".
std::string NowIso8601();

}  // namespace devpass::hiding
