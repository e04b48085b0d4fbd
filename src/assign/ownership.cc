// Claim: exclusive ownership of assigned devices (ownership.h).

#include <algorithm>
#include <utility>

#include "assign/ownership_internal.h"
#include "base/fs.h"
#include "base/lock.h"
#include "hiding/binder.h"
#include "hiding/ledger.h"
#include "hiding/persist.h"
#include "host/iommu_group.h"

namespace devpass::assign {
namespace {

using internal::EndAssignment;
using internal::StaleMessage;

std::string Quoted(const std::vector<PciAddress>& v) {
  std::string out;
  for (const auto& a : v) out += (out.empty() ? "" : " ") + a.ToString();
  return out;
}

// Why a device on another stub driver cannot be assigned.
Error WrongStub(const PciAddress& a, const std::string& driver,
                bool by_devpass) {
  if (by_devpass) {
    return Error{
        ErrorCode::kConflict, 0,
        fmt::format("{} is hidden on {}, but a guest gets devices through "
                    "VFIO, which needs vfio-pci; devpass does not move it "
                    "between stub drivers (that would hand it to its host "
                    "driver in between). Run 'devpass unhide {}' and "
                    "'devpass hide {}' (vfio-pci is the default), then try "
                    "again",
                    a, driver, a, a)};
  }
  return Error{
      ErrorCode::kConflict, 0,
      fmt::format("{} is on {}, put there by something other than devpass "
                  "(libvirt, driverctl, a kernel parameter); a guest of "
                  "devpass needs it on vfio-pci. Release it from {} first "
                  "(see 'devpass unhide {}' for how)",
                  a, driver, driver, a)};
}

}  // namespace

bool ReleaseReport::ok() const {
  return std::none_of(devices.begin(), devices.end(),
                      [](const ReleasedDevice& d) {
                        return d.outcome == ReleasedDevice::Outcome::kFailed;
                      });
}

Claim::Claim(const Root& root, hiding::Kernel& kernel,
             hiding::HiderConfig config, std::string guest,
             hiding::ProcessIdentity owner)
    : root_(root),
      kernel_(&kernel),
      config_(std::move(config)),
      guest_(std::move(guest)),
      owner_(std::move(owner)) {}

Claim::Claim(Claim&& other) noexcept
    : root_(other.root_),
      kernel_(other.kernel_),
      config_(std::move(other.config_)),
      guest_(std::move(other.guest_)),
      owner_(std::move(other.owner_)),
      devices_(std::move(other.devices_)),
      notes_(std::move(other.notes_)),
      held_(std::exchange(other.held_, false)) {}

Claim& Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    if (held_) (void)Release();
    root_ = other.root_;
    kernel_ = other.kernel_;
    config_ = std::move(other.config_);
    guest_ = std::move(other.guest_);
    owner_ = std::move(other.owner_);
    devices_ = std::move(other.devices_);
    notes_ = std::move(other.notes_);
    held_ = std::exchange(other.held_, false);
  }
  return *this;
}

Claim::~Claim() {
  if (held_) (void)Release();
}

Result<Claim> Claim::Acquire(const Root& root, hiding::Kernel& kernel,
                             const hiding::HiderConfig& config,
                             std::span<const PciAddress> devices,
                             std::string guest_name, ClaimOptions options) {
  if (guest_name.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a guest needs a name to own devices (--name)");
  }
  std::vector<PciAddress> want;
  for (const auto& a : devices) {
    if (std::find(want.begin(), want.end(), a) == want.end()) want.push_back(a);
  }
  DP_ASSIGN_OR_RETURN(hiding::ProcessIdentity self,
                      hiding::CurrentProcess(root));
  Claim claim(root, kernel, config, guest_name, self);
  if (want.empty()) {
    claim.held_ = true;
    return claim;
  }

  DP_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Acquire(root, config.lock_timeout));
  hiding::Hider hider(root, kernel, config);
  // Errors say what this Acquire recovered on the way: that stays done.
  auto fail = [&claim](Error e) -> Result<Claim> {
    if (!claim.notes_.empty()) {
      std::string done;
      for (const auto& n : claim.notes_) done += (done.empty() ? "" : "; ") + n;
      e.message += " (before that: " + done + ")";
    }
    return tl::unexpected(std::move(e));
  };

  // 1. Owners: a live one refuses the whole claim; a dead one is recovered.
  {
    DP_ASSIGN_OR_RETURN(hiding::Ledger ledger, hiding::Ledger::Load(root));
    std::vector<std::pair<PciAddress, hiding::OwnerProbe>> stale;
    for (const auto& a : want) {
      const hiding::LedgerEntry* e = ledger.Find(a);
      if (!e || !e->assignment) continue;
      hiding::OwnerProbe probe = hiding::ProbeOwner(root, *e->assignment);
      if (probe.alive()) {
        return MakeError(
            ErrorCode::kBusy,
            fmt::format("{} is assigned to {}; stop that guest first", a,
                        hiding::DescribeOwner(*e->assignment)));
      }
      stale.emplace_back(a, std::move(probe));
    }
    for (const auto& [a, probe] : stale) {
      hiding::Assignment old = *ledger.Find(a)->assignment;
      auto r = EndAssignment(root, hider, lock, a, std::nullopt);
      if (!r || r->outcome == ReleasedDevice::Outcome::kFailed) {
        return fail(
            Error{r ? ErrorCode::kKernelRejected : r.error().code,
                  r ? 0 : r.error().sys_errno,
                  fmt::format("cannot take {} from {}, which is gone: {}", a,
                              hiding::DescribeOwner(old),
                              r ? r->what : r.error().ToString())});
      }
      claim.notes_.push_back("recovered: " +
                             StaleMessage(a, old, probe, r->what));
    }
  }

  // 2. Where each device is. Checked for all before anything changes.
  DP_ASSIGN_OR_RETURN(hiding::Ledger ledger, hiding::Ledger::Load(root));
  hiding::Binder binder(root, kernel, config.vfio_wait);
  hiding::Persist persist(root, config.devpass_binary);
  std::vector<PciAddress> to_hide;
  std::vector<ClaimedDevice> on_vfio;  // hidden already, or adopted
  for (const auto& a : want) {
    if (!binder.DeviceExists(a)) {
      return fail(
          Error{ErrorCode::kNotFound, 0,
                fmt::format("there is no PCI device {} ({} does not exist); "
                            "check the address with 'devpass list'",
                            a, root.Display(binder.DeviceDir(a)))});
    }
    std::string current = binder.CurrentDriver(a);
    const hiding::LedgerEntry* e = ledger.Find(a);
    ClaimedDevice d;
    d.address = a;
    if (e && current == e->stub) {
      if (e->stub != hiding::kVfioPci.driver)
        return fail(WrongStub(a, e->stub, true));
      d.original_driver = e->original_driver;
      on_vfio.push_back(std::move(d));
    } else if (!e && current == hiding::kVfioPci.driver) {
      d.adopted = true;
      DP_ASSIGN_OR_RETURN(auto persisted, persist.Read(a));
      if (persisted) d.original_driver = persisted->original_driver;
      on_vfio.push_back(std::move(d));
    } else if (e && host::IsStubDriver(current)) {
      return fail(
          Error{ErrorCode::kConflict, 0,
                fmt::format("the ledger says {} is hidden on {}, but it is on "
                            "{}; devpass will not guess who moved it. Check "
                            "with 'devpass status' and unhide it ('devpass "
                            "unhide {}') before assigning it",
                            a, e->stub, current, a)});
    } else if (host::IsStubDriver(current)) {
      return fail(WrongStub(a, current, false));
    } else if (!options.manage) {
      return fail(Error{
          ErrorCode::kConflict, 0,
          fmt::format("{} is not hidden (it is on {}); run `devpass hide "
                      "{}` first, or drop --no-manage so that devpass "
                      "hides it for this run and gives it back afterwards",
                      a, current.empty() ? "no driver" : current, a)});
    } else {
      to_hide.push_back(a);
    }
  }

  hiding::Assignment record;
  record.guest = guest_name;
  record.pid = self.pid;
  record.start_time = self.start_time;
  record.boot_id = self.boot_id;
  record.since = hiding::NowIso8601();

  // 3. Hide the others for this run: one hider call, so group viability is
  // judged over all of them and a failure rolls every one back. The
  // assignment is committed with the hide.
  if (!to_hide.empty()) {
    std::vector<std::string> names;
    for (const auto& a : to_hide) names.push_back(a.ToString());
    hiding::HideOptions ho;
    ho.driver = std::string(hiding::kVfioPci.name);
    ho.force = options.force;
    ho.assignment = record;
    ho.assignment->managed = true;
    auto hidden = hider.Hide(names, ho, lock);
    if (!hidden) {
      Error e = hidden.error();
      e.message = fmt::format("cannot hide {} for guest '{}': {}",
                              Quoted(to_hide), guest_name, e.message);
      return fail(std::move(e));
    }
    for (const auto& r : hidden->devices) {
      ClaimedDevice d;
      d.address = r.address;
      d.original_driver = r.original_driver;
      if (r.action == hiding::DeviceResult::Action::kHidden) {
        d.managed = true;
        std::string vfio = r.vfio_node.empty() ? "" : " (" + r.vfio_node + ")";
        d.message = fmt::format(
            "{}: hidden for guest '{}': {} -> {}{}", r.address, guest_name,
            r.original_driver.empty() ? "(no driver)" : r.original_driver,
            r.driver, vfio);
        claim.devices_.push_back(std::move(d));
      } else {
        on_vfio.push_back(
            std::move(d));  // cannot happen under the lock; record it
      }
    }
    for (const auto& w : hidden->warnings) claim.notes_.push_back(w);
  }

  // 4. Record the devices that were on vfio-pci already.
  if (!on_vfio.empty()) {
    auto undo = [&](Error e) -> Result<Claim> {
      for (const auto& d : claim.devices_) {
        auto r = EndAssignment(root, hider, lock, d.address, self);
        if (r) e.message += fmt::format("; {}", r->message);
      }
      claim.devices_.clear();
      return fail(std::move(e));
    };
    auto reloaded = hiding::Ledger::Load(root);
    if (!reloaded) return undo(reloaded.error());
    for (auto& d : on_vfio) {
      const hiding::LedgerEntry* old = reloaded->Find(d.address);
      hiding::LedgerEntry e;
      if (old) {
        e = *old;
      } else {
        e.address = d.address;
        e.stub = std::string(hiding::kVfioPci.driver);
        e.original_driver = d.original_driver;
        e.ids = binder.Ids(d.address);
        e.persisted = Exists(persist.FileFor(d.address));
        e.hidden_since = record.since;
      }
      e.assignment = record;
      e.assignment->adopted = d.adopted;
      reloaded->Upsert(std::move(e));
      d.message =
          fmt::format("{}: {} vfio-pci, assigned to guest '{}'", d.address,
                      d.adopted ? "on" : "hidden on", guest_name);
      if (d.adopted)
        d.message +=
            " (it was on vfio-pci without devpass; left there after the run)";
      claim.devices_.push_back(std::move(d));
    }
    if (auto s = reloaded->Save(); !s) return undo(s.error());
  }
  std::sort(claim.devices_.begin(), claim.devices_.end(),
            [](const auto& x, const auto& y) { return x.address < y.address; });
  claim.held_ = true;
  return claim;
}

Result<ReleaseReport> Claim::Release() {
  if (!held_) return ReleaseReport{};
  held_ = false;  // over either way: what is left, recovery finds
  ReleaseReport report;
  if (devices_.empty()) return report;
  DP_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Acquire(root_, config_.lock_timeout));
  hiding::Hider hider(root_, *kernel_, config_);
  for (const auto& d : devices_) {
    auto r = internal::EndAssignment(root_, hider, lock, d.address, owner_);
    if (!r) {
      ReleasedDevice failed;
      failed.address = d.address;
      failed.outcome = ReleasedDevice::Outcome::kFailed;
      failed.what = fmt::format(
          "could not be released ({}); the next devpass command "
          "recovers it",
          r.error().ToString());
      failed.message = fmt::format("{} {}", d.address, failed.what);
      report.devices.push_back(std::move(failed));
      continue;
    }
    if (r->outcome == ReleasedDevice::Outcome::kFailed) {
      r->what +=
          "; it stays hidden and recorded, and the first devpass command after "
          "this one has exited gives it back";
      r->message = fmt::format("{} {}", d.address, r->what);
    }
    report.devices.push_back(std::move(*r));
  }
  return report;
}

}  // namespace devpass::assign
