#pragma once

// Exclusive ownership of assigned devices (design module 4, issue 6 item 2).
// Before `devpass run --device BDF` touches a device it takes a Claim: under
// the devpass lock (the one hiding uses) it checks that no live guest owns
// the device, makes sure the device is on vfio-pci, and records the owner in
// the ledger (hiding/ledger.h, Assignment): guest name, this process's pid,
// its start time and boot id (hiding/owner.h), the time, and whether devpass
// hid the device only for this run ("managed").
//
// The lock is held only while the claim is taken and released; during the
// run the ledger record is what makes the device exclusive. A guest killed
// with SIGKILL cannot release its claim, so every devpass command starts with
// RecoverStaleAssignments (next to the journal repair): an assignment whose
// owner is dead (pid gone, pid reused by another process, or an earlier boot)
// is dropped and a managed device given back to its original driver.
//
// Decisions (docs/hiding.md, "Device ownership"):
//  - not hidden + manage: hidden now on vfio-pci through the hider, with all
//    its checks (group viability, host-critical devices; --force only through
//    ClaimOptions), and given back on release;
//  - not hidden + no manage: refused ("run `devpass hide BDF` first");
//  - hidden by devpass on pci-stub / xen-pciback, or on any stub devpass did
//    not put it on other than vfio-pci: refused, never moved. A guest needs
//    VFIO, and moving a device between stubs means unhide + hide, which
//    would hand it to its host driver in between;
//  - on vfio-pci without devpass (vfio-pci.ids=, driverctl): adopted for the
//    run (a ledger entry that exists only for the assignment) and left on
//    vfio-pci afterwards;
//  - all or nothing: if any device is refused or fails, what this Acquire did
//    is undone (managed devices unhidden, records dropped). Stale owners it
//    recovered on the way stay recovered: that was right in any case.

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"
#include "hiding/hider.h"
#include "hiding/kernel.h"
#include "hiding/owner.h"

namespace devpass::assign {

struct ClaimOptions {
  // Hide devices that are not on vfio-pci yet for this run and give them
  // back when it ends (`devpass run` default; --no-manage turns it off).
  bool manage = true;
  // Hide host-critical devices anyway (the hider's --force); group viability
  // is never overridden.
  bool force = false;
};

struct ClaimedDevice {
  PciAddress address;
  bool managed = false;         // hidden for this run; given back on release
  bool adopted = false;         // was on vfio-pci without devpass
  std::string original_driver;  // the driver it goes back to ("" = none)
  // "0000:00:03.0: hidden for guest 'web': e1000e -> vfio-pci (/dev/vfio/3)".
  std::string message;
};

struct ReleasedDevice {
  enum class Outcome {
    kGivenBack,  // managed: back on its original driver (or unbound, as before)
    kStaysHidden,  // was hidden before the run (or persisted since): stays on
                   // vfio-pci
    kNotOurs,      // the record was gone or names another owner: left alone
    kFailed,       // could not be given back; the record stays for recovery
  };
  PciAddress address;
  Outcome outcome = Outcome::kFailed;
  std::string driver;   // the driver bound now ("" = unbound)
  std::string what;     // "given back to e1000e"
  std::string message;  // "0000:00:03.0 given back to e1000e"
};

struct ReleaseReport {
  std::vector<ReleasedDevice> devices;
  bool ok() const;  // nothing failed
};

// RAII ownership of a set of devices for one guest. Release() (or the
// destructor) ends it. Movable, not copyable. The Kernel passed to Acquire
// must outlive the Claim.
class Claim {
 public:
  static Result<Claim> Acquire(const Root& root, hiding::Kernel& kernel,
                               const hiding::HiderConfig& config,
                               std::span<const PciAddress> devices,
                               std::string guest_name,
                               ClaimOptions options = {});

  Claim(Claim&& other) noexcept;
  Claim& operator=(Claim&& other) noexcept;
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim();  // Release(), result ignored

  // Drops the assignments and gives managed devices back, under the lock.
  // Per-device problems are in the report; an error only when the lock or
  // the ledger cannot be had, and then the records stay for recovery. The
  // claim is over either way: a second call does nothing.
  Result<ReleaseReport> Release();

  bool held() const { return held_; }
  const std::string& guest() const { return guest_; }
  const hiding::ProcessIdentity& owner() const { return owner_; }
  const std::vector<ClaimedDevice>& devices() const { return devices_; }
  // Stale owners recovered and hider warnings, for the user.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  Claim(const Root& root, hiding::Kernel& kernel, hiding::HiderConfig config,
        std::string guest, hiding::ProcessIdentity owner);

  Root root_;
  hiding::Kernel* kernel_;
  hiding::HiderConfig config_;
  std::string guest_;
  hiding::ProcessIdentity owner_;
  std::vector<ClaimedDevice> devices_;
  std::vector<std::string> notes_;
  bool held_ = false;
};

// Drops every assignment whose owner is dead and gives managed devices back.
// Returns one message per device recovered ("0000:00:03.0 was assigned to
// guest 'web' (pid 4242, since ...), which is gone (pid 4242 no longer
// exists): given back to e1000e"). Takes the lock only when there is
// something to recover (waiting config.repair_lock_timeout). When the ledger
// cannot be read it returns nothing: the commands that need the ledger report
// that themselves. An error names the devices it could not recover (and those
// it did); their records stay for the next try.
Result<std::vector<std::string>> RecoverStaleAssignments(
    const Root& root, hiding::Kernel& kernel,
    const hiding::HiderConfig& config);

}  // namespace devpass::assign
