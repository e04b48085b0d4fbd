#pragma once

// Shared by ownership.cc (Claim) and recovery.cc; not part of the API.

#include <optional>
#include <string>

#include "assign/ownership.h"
#include "base/lock.h"

namespace devpass::assign::internal {

// Ends the assignment recorded on `address`; the caller holds the devpass
// lock (`held`). A managed device is given back to its original driver
// through the hider (which drops its ledger entry, assignment included, in
// the same commit) unless it was persisted meanwhile; an adopted entry is
// removed, leaving the device on vfio-pci; otherwise only the assignment is
// dropped. `owner` is the releasing process (Claim::Release), or nullopt for
// a dead owner (recovery); with an owner, a record naming another owner is
// left alone (kNotOurs).
Result<ReleasedDevice> EndAssignment(
    const Root& root, hiding::Hider& hider, const FileLock& held,
    const PciAddress& address,
    const std::optional<hiding::ProcessIdentity>& owner);

// "0000:00:03.0 was assigned to guest 'web' (pid 4242, since ...), which is
// gone (pid 4242 no longer exists): given back to e1000e".
std::string StaleMessage(const PciAddress& address, const hiding::Assignment& a,
                         const hiding::OwnerProbe& probe,
                         const std::string& what);

}  // namespace devpass::assign::internal
