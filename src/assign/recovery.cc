// Ending an assignment, and recovering those of dead owners (ownership.h).

#include <utility>

#include "assign/ownership_internal.h"
#include "base/fs.h"
#include "hiding/ledger.h"

namespace devpass::assign {
namespace internal {

using Outcome = ReleasedDevice::Outcome;

std::string StaleMessage(const PciAddress& address, const hiding::Assignment& a,
                         const hiding::OwnerProbe& probe,
                         const std::string& what) {
  return fmt::format("{} was assigned to {}, which is gone ({}): {}", address,
                     hiding::DescribeOwner(a), probe.detail, what);
}

Result<ReleasedDevice> EndAssignment(
    const Root& root, hiding::Hider& hider, const FileLock& held,
    const PciAddress& address,
    const std::optional<hiding::ProcessIdentity>& owner) {
  ReleasedDevice d;
  d.address = address;
  auto finish = [&](Outcome outcome, std::string what) {
    d.outcome = outcome;
    d.what = std::move(what);
    d.message = fmt::format("{} {}", address, d.what);
    if (d.driver.empty()) {
      d.driver = ReadLinkName(root.Sys("bus/pci/devices") / address.ToString() /
                              "driver")
                     .value_or("");
    }
    return d;
  };
  DP_ASSIGN_OR_RETURN(hiding::Ledger ledger, hiding::Ledger::Load(root));
  const hiding::LedgerEntry* entry = ledger.Find(address);
  if (!entry || !entry->assignment) {
    return finish(Outcome::kNotOurs, "was no longer assigned; left alone");
  }
  const hiding::Assignment a = *entry->assignment;
  if (owner && !hiding::SameOwner(a, *owner)) {
    return finish(Outcome::kNotOurs,
                  fmt::format("is assigned to {} now; left alone",
                              hiding::DescribeOwner(a)));
  }

  if (a.managed && !entry->persisted) {
    // The hider gives it back and drops the ledger entry (assignment
    // included) in one commit, journaled: a crash half way is completed by
    // the next devpass, like any interrupted unhide.
    hiding::UnhideOptions uo;
    uo.owner = owner;
    auto r = hider.Unhide({address.ToString()}, uo, held);
    if (!r) {
      return finish(
          Outcome::kFailed,
          fmt::format("could not be given back ({})", r.error().ToString()));
    }
    const hiding::DeviceResult& u = r->devices.at(0);
    d.driver = u.driver;
    std::string detail = u.message;
    if (std::string prefix = address.ToString() + ": ";
        detail.starts_with(prefix)) {
      detail.erase(0, prefix.size());
    }
    switch (u.action) {
      case hiding::DeviceResult::Action::kUnhidden:
        return finish(Outcome::kGivenBack,
                      u.driver.empty()
                          ? std::string("given back to the host (no driver, "
                                        "as before it was hidden)")
                          : "given back to " + u.driver);
      case hiding::DeviceResult::Action::kFailed:
        return finish(Outcome::kFailed,
                      fmt::format("could not be given back ({})", detail));
      default:  // gone, or drifted off the stub: the hider forgot it
        return finish(Outcome::kGivenBack, "released: " + detail);
    }
  }

  if (a.adopted) {
    // Its entry existed only for the assignment: back to what it was.
    ledger.Remove(address);
    DP_RETURN_IF_ERROR(ledger.Save());
    return finish(Outcome::kStaysHidden,
                  "left on vfio-pci, where it was before");
  }
  hiding::LedgerEntry e = *entry;
  e.assignment.reset();
  ledger.Upsert(std::move(e));
  DP_RETURN_IF_ERROR(ledger.Save());
  return finish(
      Outcome::kStaysHidden,
      a.managed ? "stays hidden on vfio-pci (it was persisted during the run)"
                : "stays hidden on vfio-pci, as before the run");
}

}  // namespace internal

namespace {

struct Stale {
  PciAddress address;
  hiding::Assignment assignment;
  hiding::OwnerProbe probe;
};

std::vector<Stale> FindStale(const Root& root, const hiding::Ledger& ledger) {
  std::vector<Stale> out;
  for (const auto& e : ledger.entries()) {
    if (!e.assignment) continue;
    hiding::OwnerProbe probe = hiding::ProbeOwner(root, *e.assignment);
    if (!probe.alive())
      out.push_back({e.address, *e.assignment, std::move(probe)});
  }
  return out;
}

std::string JoinLines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

Result<std::vector<std::string>> RecoverStaleAssignments(
    const Root& root, hiding::Kernel& kernel,
    const hiding::HiderConfig& config) {
  // Cheap check first, without the lock: this runs before every command.
  auto peek = hiding::Ledger::Load(root);
  if (!peek || FindStale(root, *peek).empty())
    return std::vector<std::string>{};

  auto lock = FileLock::Acquire(root, config.repair_lock_timeout);
  if (!lock) {
    Error e = lock.error();
    e.message =
        "cannot take the devpass lock to give back devices of guests that "
        "are gone (the next devpass command tries again): " +
        e.message;
    return tl::unexpected(e);
  }
  // Again under the lock: another devpass may have recovered them meanwhile.
  DP_ASSIGN_OR_RETURN(hiding::Ledger ledger, hiding::Ledger::Load(root));
  hiding::Hider hider(root, kernel, config);
  std::vector<std::string> recovered;
  std::vector<std::string> failed;
  std::optional<Error> first;
  for (const Stale& s : FindStale(root, ledger)) {
    auto r =
        internal::EndAssignment(root, hider, *lock, s.address, std::nullopt);
    if (!r || r->outcome == ReleasedDevice::Outcome::kFailed) {
      std::string why =
          r ? r->what
            : "could not be given back (" + r.error().ToString() + ")";
      failed.push_back(fmt::format("{} (assigned to {}, which is gone) {}",
                                   s.address,
                                   hiding::DescribeOwner(s.assignment), why));
      if (!r && !first) first = r.error();
      continue;
    }
    recovered.push_back(
        internal::StaleMessage(s.address, s.assignment, s.probe, r->what));
  }
  if (!failed.empty()) {
    Error e = first.value_or(Error{ErrorCode::kKernelRejected, 0, ""});
    e.message = fmt::format(
        "devices of guests that are gone could not all be given "
        "back: {}; their records stay and the next devpass command "
        "tries again{}",
        JoinLines(failed),
        recovered.empty() ? "" : "; recovered: " + JoinLines(recovered));
    return tl::unexpected(e);
  }
  return recovered;
}

}  // namespace devpass::assign
