#pragma once

// The policy layer the CLI calls: validates requests, refuses what would hurt
// the host, and runs the binding protocol (binder.h) for each device under
// the devpass lock, with a journal record per device (journal.h), the ledger
// (ledger.h) and, with --persist, the boot-time files (persist.h).
//
// Refusals, checked before anything is changed (so bad input changes
// nothing):
//  - a malformed address, a device that does not exist, a PCI bridge;
//  - vfio-pci for a device without an IOMMU group: the kernel's vfio-pci
//    refuses such a device (no /dev/vfio node without unsafe no-IOMMU mode);
//    pci-stub and xen-pciback are allowed;
//  - a device whose IOMMU group has other members in host use (the kernel's
//    viability rule): --group hides every non-bridge member together;
//    --force does not override this, VFIO would refuse the group anyway;
//  - host-critical devices (boot GPU, behind a mounted file system or active
//    swap, carrying a default route): --force overrides these.
// A multi-device hide is all or nothing: on a failure the devices already
// moved are rolled back.

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/lock.h"
#include "base/pci_address.h"
#include "base/root.h"
#include "hiding/journal.h"
#include "hiding/kernel.h"
#include "hiding/ledger.h"
#include "hiding/owner.h"
#include "hiding/persist.h"

namespace devpass::hiding {

struct HideOptions {
  std::string driver = "vfio-pci";  // vfio-pci, pci-stub, xen-pciback
  bool group = false;    // hide every non-bridge member of the group(s)
  bool persist = false;  // also hide at every boot
  bool force = false;    // hide host-critical devices anyway
  // Device assignment (src/assign): recorded on each device this call moves
  // onto the stub, in the same ledger commit as the hide, so that a crash
  // can never leave a device hidden for a guest without its owner on record.
  // Devices that were hidden already keep the assignment they had.
  std::optional<Assignment> assignment;
};

struct UnhideOptions {
  bool persist = false;  // also stop hiding at boot
  // A device assigned to a live guest is refused (stop the guest first),
  // except when this is its owner giving it back (src/assign).
  std::optional<ProcessIdentity> owner;
};

struct DeviceResult {
  enum class Action {
    kHidden,         // moved onto the stub now
    kAlreadyHidden,  // was on the stub already
    kUnhidden,       // given back to its original driver (or left unbound)
    kNotHidden,      // unhide: devpass had not hidden it; nothing to do
    kForgotten,  // unhide: gone or drifted off the stub; ledger entry dropped
    kFailed,
  };
  PciAddress address;
  Action action = Action::kFailed;
  std::string stub;             // driver name
  std::string original_driver;  // "" = none
  std::string driver;           // driver bound now ("" = unbound)
  std::string vfio_node;        // "/dev/vfio/7"
  bool persisted = false;
  std::string message;         // one line for people
  std::optional<Error> error;  // kFailed only
};

std::string_view ActionName(DeviceResult::Action action);

struct OpReport {
  std::vector<DeviceResult> devices;
  std::vector<std::string> warnings;
  bool ok() const;  // no device failed
};

struct StatusEntry {
  LedgerEntry entry;
  bool present = true;         // the device still exists
  std::string current_driver;  // "" = unbound
  bool drifted = false;        // no longer on its stub
  OwnerProbe owner;            // entry.assignment only: is its owner alive?
};

struct StatusReport {
  std::vector<StatusEntry> hidden;
  // Persisted devices the ledger does not list (not hidden in this boot).
  std::vector<PersistedHide> persisted_only;
  std::vector<JournalRecord> pending;  // interrupted operations
  std::vector<std::string> warnings;
};

struct RepairReport {
  std::vector<std::string> repaired;  // "'hide X' was interrupted at ..."
  std::vector<std::string> failed;    // could not repair; journal kept
};

struct HiderConfig {
  std::filesystem::path devpass_binary = "/usr/local/bin/devpass";
  std::chrono::milliseconds lock_timeout = std::chrono::seconds(30);
  // Recovery runs before every command, even `status`: it should not stall
  // a read-only command behind a long hide. If the lock is busy, the records
  // most likely belong to the devpass holding it.
  std::chrono::milliseconds repair_lock_timeout = std::chrono::seconds(2);
  std::chrono::milliseconds vfio_wait = std::chrono::seconds(1);
};

class Hider {
 public:
  Hider(const Root& root, Kernel& kernel, HiderConfig config = {});

  Result<OpReport> Hide(const std::vector<std::string>& devices,
                        const HideOptions& options);
  // Per device: a failure on one does not stop the others (see ok()).
  // Refuses (changing nothing) a device assigned to a live guest.
  Result<OpReport> Unhide(const std::vector<std::string>& devices,
                          const UnhideOptions& options);
  // The same, for a caller that holds the devpass lock already (`held`
  // proves it): device assignment checks owners, hides and records under
  // one lock. flock(2) locks are per open file, so taking it again in the
  // same process would wait for itself.
  Result<OpReport> Hide(const std::vector<std::string>& devices,
                        const HideOptions& options, const FileLock& held);
  Result<OpReport> Unhide(const std::vector<std::string>& devices,
                          const UnhideOptions& options, const FileLock& held);
  // Hides every persisted device (idempotent); the boot unit runs it.
  Result<OpReport> Restore();
  Result<StatusReport> Status() const;
  // Rolls back interrupted hides, completes interrupted unhides.
  RepairReport RepairInterrupted();

 private:
  struct Planned {
    PciAddress address;
    std::string original;
    bool already = false;  // on the stub already: record only
    std::string note;
  };
  // Runs the protocol for each planned device (lock held), then persists and
  // commits the ledger; all or nothing.
  Result<OpReport> Apply(
      const std::vector<Planned>& plan, const StubDriver& stub, bool persist,
      const std::optional<Assignment>& assignment = std::nullopt);
  Result<DeviceResult> UnhideOne(Ledger& ledger, const PciAddress& address,
                                 const UnhideOptions& options);

  Root root_;
  Kernel& kernel_;
  HiderConfig config_;
  Journal journal_;
  Persist persist_;
};

}  // namespace devpass::hiding
