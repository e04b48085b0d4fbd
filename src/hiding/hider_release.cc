// Unhide and restore (hider.h).

#include <unistd.h>

#include "base/fs.h"
#include "base/lock.h"
#include "hiding/binder.h"
#include "hiding/crash.h"
#include "hiding/hider.h"
#include "hiding/hider_internal.h"
#include "host/iommu_group.h"

namespace devpass::hiding {

using internal::ParseDevices;

Result<OpReport> Hider::Unhide(const std::vector<std::string>& devices,
                               const UnhideOptions& options) {
  // Bad input fails before waiting for the lock.
  DP_RETURN_IF_ERROR(ParseDevices(root_, devices, false));
  DP_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Acquire(root_, config_.lock_timeout));
  return Unhide(devices, options, lock);
}

Result<OpReport> Hider::Unhide(const std::vector<std::string>& devices,
                               const UnhideOptions& options,
                               const FileLock& /*held*/) {
  DP_ASSIGN_OR_RETURN(std::vector<PciAddress> addrs,
                      ParseDevices(root_, devices, false));
  DP_ASSIGN_OR_RETURN(Ledger ledger, Ledger::Load(root_));
  Binder binder(root_, kernel_, config_.vfio_wait);

  // Check every device before changing any.
  for (const auto& a : addrs) {
    const LedgerEntry* entry = ledger.Find(a);
    if (entry && entry->assignment &&
        !(options.owner && SameOwner(*entry->assignment, *options.owner)) &&
        ProbeOwner(root_, *entry->assignment).alive()) {
      // Taking the device from under a running guest would hand the host a
      // device in the middle of the guest's DMA.
      return MakeError(
          ErrorCode::kConflict,
          fmt::format("{} is assigned to {}; stop that guest first", a,
                      DescribeOwner(*entry->assignment)));
    }
    bool known = entry != nullptr;
    DP_ASSIGN_OR_RETURN(auto persisted, persist_.Read(a));
    known = known || persisted.has_value();
    if (!binder.DeviceExists(a) && !known) {
      return MakeError(
          ErrorCode::kNotFound,
          fmt::format("there is no PCI device {} ({} does not exist); "
                      "check the address with 'devpass list'",
                      a, root_.Display(binder.DeviceDir(a))));
    }
    std::string current = binder.CurrentDriver(a);
    if (!known && host::IsStubDriver(current)) {
      // Someone else hid it (libvirt, driverctl, vfio-pci.ids=...). Without a
      // record of its original driver, any guess could hand it to the wrong
      // driver or take it from a running guest: change nothing.
      return MakeError(
          ErrorCode::kConflict,
          fmt::format(
              "{} is on {}, but devpass did not hide it (no ledger entry, no "
              "persist file), so devpass does not know which driver it came "
              "from "
              "and changes nothing. It may belong to libvirt, driverctl or "
              "vfio-pci.ids=. To release it yourself: echo {} > "
              "/sys/bus/pci/drivers/{}/unbind; echo > "
              "/sys/bus/pci/devices/{}/driver_override; echo {} > "
              "/sys/bus/pci/drivers_probe",
              a, current, a, current, a, a));
    }
  }
  OpReport report;
  for (const auto& a : addrs) {
    DP_ASSIGN_OR_RETURN(DeviceResult d, UnhideOne(ledger, a, options));
    if (d.persisted && !options.persist) {
      report.warnings.push_back(
          fmt::format("{} is still persisted: it will be hidden again at boot; "
                      "use 'devpass "
                      "unhide --persist {}' to stop that",
                      a, a));
    }
    report.devices.push_back(std::move(d));
  }
  return report;
}

Result<DeviceResult> Hider::UnhideOne(Ledger& ledger, const PciAddress& a,
                                      const UnhideOptions& options) {
  Binder binder(root_, kernel_, config_.vfio_wait);
  DeviceResult d;
  d.address = a;
  const LedgerEntry* entry = ledger.Find(a);
  DP_ASSIGN_OR_RETURN(auto persisted, persist_.Read(a));
  auto forget = [&](std::string message) -> Result<DeviceResult> {
    if (ledger.Remove(a)) DP_RETURN_IF_ERROR(ledger.Save());
    if (options.persist) DP_RETURN_IF_ERROR(persist_.Remove(a));
    d.persisted = Exists(persist_.FileFor(a));
    d.action = DeviceResult::Action::kForgotten;
    d.message = std::move(message);
    return d;
  };
  if (!binder.DeviceExists(a)) {
    return forget(
        fmt::format("{}: the device no longer exists; removed it from the "
                    "ledger",
                    a));
  }
  d.driver = binder.CurrentDriver(a);
  if (!entry && !persisted) {
    d.action = DeviceResult::Action::kNotHidden;
    d.message = fmt::format("{}: not hidden (on {}); nothing to do", a,
                            d.driver.empty() ? "no driver" : d.driver);
    return d;
  }
  std::string stub_name = entry ? entry->stub : persisted->stub;
  DP_ASSIGN_OR_RETURN(StubDriver stub, FindStub(stub_name));
  d.stub = stub_name;
  d.original_driver =
      entry ? entry->original_driver : persisted->original_driver;
  if (!d.driver.empty() && d.driver != stub.driver) {
    // It left the stub behind devpass's back (a reboot without the persist
    // files, or someone rebound it). Only clear a stale override.
    if (binder.Override(a) == stub.driver) {
      DP_RETURN_IF_ERROR(
          kernel_.WriteSysfs(binder.DeviceDir(a) / "driver_override", "\n"));
    }
    return forget(
        fmt::format("{}: was not on {} any more (it is on {}); removed it "
                    "from the ledger",
                    a, stub.driver, d.driver));
  }

  JournalRecord rec;
  rec.op = "unhide";
  rec.address = a;
  rec.stub = std::string(stub.driver);
  rec.original_driver = d.original_driver;
  rec.persist = options.persist;
  rec.pid = static_cast<int>(::getpid());
  rec.started = NowIso8601();
  DP_RETURN_IF_ERROR(journal_.Write(rec));
  CrashPoint("unhide", "after-journal");
  StepHook hook = [&](std::string_view step) -> devpass::Status {
    rec.step = std::string(step);
    DP_RETURN_IF_ERROR(journal_.Write(rec));
    CrashPoint("unhide", "after-" + std::string(step));
    return Ok();
  };
  auto released = binder.ReleaseFromStub(a, stub, d.original_driver, hook);
  if (!released) {
    // Still hidden (the protocol put it back): the journal has nothing to
    // finish. Half released: keep the record for recovery.
    if (binder.CurrentDriver(a) == stub.driver) (void)journal_.Remove(a);
    d.action = DeviceResult::Action::kFailed;
    d.driver = binder.CurrentDriver(a);
    d.error = released.error();
    d.message = released.error().ToString();
    return d;
  }
  ledger.Remove(a);
  DP_RETURN_IF_ERROR(ledger.Save());
  if (options.persist) DP_RETURN_IF_ERROR(persist_.Remove(a));
  DP_RETURN_IF_ERROR(journal_.Remove(a));
  d.action = DeviceResult::Action::kUnhidden;
  d.driver = released->driver;
  d.persisted = Exists(persist_.FileFor(a));
  d.message =
      fmt::format("{}: unhidden: {} -> {}", a, stub.driver,
                  d.driver.empty() ? "(no driver, as before)" : d.driver);
  for (const auto& w : released->warnings) d.message += "; " + w;
  return d;
}

Result<OpReport> Hider::Restore() {
  DP_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Acquire(root_, config_.lock_timeout));
  DP_ASSIGN_OR_RETURN(auto all, persist_.List());
  DP_ASSIGN_OR_RETURN(Ledger ledger, Ledger::Load(root_));
  Binder binder(root_, kernel_, config_.vfio_wait);
  OpReport report;
  // Each device on its own: one missing module or device must not keep the
  // others visible to the host. Policy checks were made when the device was
  // persisted; at boot only the binding is redone.
  for (const auto& h : all) {
    DeviceResult failed;
    failed.address = h.address;
    failed.stub = h.stub;
    failed.original_driver = h.original_driver;
    failed.persisted = true;
    if (!binder.DeviceExists(h.address)) {
      report.warnings.push_back(
          fmt::format("{} is persisted but does not exist; skipped (remove it "
                      "with 'devpass "
                      "unhide --persist {}')",
                      h.address, h.address));
      continue;
    }
    auto stub = FindStub(h.stub);
    devpass::Status loaded =
        stub ? binder.EnsureStubLoaded(*stub)
             : devpass::Status(tl::unexpected(stub.error()));
    if (!loaded) {
      failed.error = loaded.error();
      failed.message =
          fmt::format("{}: {}", h.address, loaded.error().ToString());
      report.devices.push_back(std::move(failed));
      continue;
    }
    std::string current = binder.CurrentDriver(h.address);
    const LedgerEntry* entry = ledger.Find(h.address);
    Planned p{h.address, current, current == stub->driver, ""};
    if (current.empty() || p.already) {
      p.original =
          entry && p.already ? entry->original_driver : h.original_driver;
    }
    auto r = Apply({p}, *stub, true);
    if (!r) {
      failed.error = r.error();
      failed.message = fmt::format("{}: {}", h.address, r.error().ToString());
      report.devices.push_back(std::move(failed));
      continue;
    }
    for (auto& d : r->devices) report.devices.push_back(std::move(d));
    for (auto& w : r->warnings) report.warnings.push_back(std::move(w));
  }
  // Entries hidden without --persist in an earlier boot: the reboot gave the
  // device back to the host, so the ledger must not claim it any more.
  DP_ASSIGN_OR_RETURN(Ledger after, Ledger::Load(root_));
  bool changed = false;
  for (const auto& e : std::vector<LedgerEntry>(after.entries())) {
    if (Exists(persist_.FileFor(e.address))) continue;
    std::string current =
        binder.DeviceExists(e.address) ? binder.CurrentDriver(e.address) : "";
    if (current == e.stub) continue;
    after.Remove(e.address);
    changed = true;
    report.warnings.push_back(fmt::format(
        "forgot {}: it was hidden without --persist and is no longer on {} (on "
        "{})",
        e.address, e.stub, current.empty() ? "no driver" : current));
  }
  if (changed) DP_RETURN_IF_ERROR(after.Save());
  return report;
}

}  // namespace devpass::hiding
