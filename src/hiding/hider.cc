#include "hiding/hider.h"

#include <unistd.h>

#include <algorithm>
#include <set>

#include "base/fs.h"
#include "base/lock.h"
#include "hiding/binder.h"
#include "hiding/crash.h"
#include "hiding/hider_internal.h"
#include "host/host_usage.h"
#include "host/iommu_group.h"

namespace devpass::hiding {
namespace internal {

std::string Join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

// Parses, de-duplicates (keeping order) and checks that each device exists.
Result<std::vector<PciAddress>> ParseDevices(
    const Root& root, const std::vector<std::string>& args, bool must_exist) {
  if (args.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no device given; name one or more PCI addresses, as "
                     "'devpass list' shows them");
  }
  std::vector<PciAddress> out;
  for (const auto& arg : args) {
    DP_ASSIGN_OR_RETURN(PciAddress a, PciAddress::Parse(arg));
    if (std::find(out.begin(), out.end(), a) != out.end()) continue;
    auto dir = root.Sys("bus/pci/devices") / a.ToString();
    if (must_exist && !Exists(dir)) {
      return MakeError(
          ErrorCode::kNotFound,
          fmt::format("there is no PCI device {} ({} does not exist); "
                      "check the address with 'devpass list'",
                      a, root.Display(dir)));
    }
    out.push_back(a);
  }
  return out;
}

}  // namespace internal

using internal::Join;
using internal::ParseDevices;

std::string_view ActionName(DeviceResult::Action action) {
  switch (action) {
    case DeviceResult::Action::kHidden:
      return "hidden";
    case DeviceResult::Action::kAlreadyHidden:
      return "already-hidden";
    case DeviceResult::Action::kUnhidden:
      return "unhidden";
    case DeviceResult::Action::kNotHidden:
      return "not-hidden";
    case DeviceResult::Action::kForgotten:
      return "forgotten";
    case DeviceResult::Action::kFailed:
      return "failed";
  }
  return "failed";
}

bool OpReport::ok() const {
  return std::none_of(devices.begin(), devices.end(),
                      [](const DeviceResult& d) {
                        return d.action == DeviceResult::Action::kFailed;
                      });
}

Hider::Hider(const Root& root, Kernel& kernel, HiderConfig config)
    : root_(root),
      kernel_(kernel),
      config_(std::move(config)),
      journal_(root),
      persist_(root, config_.devpass_binary) {}

Result<OpReport> Hider::Hide(const std::vector<std::string>& devices,
                             const HideOptions& options) {
  // Bad input fails before waiting for the lock.
  DP_RETURN_IF_ERROR(FindStub(options.driver));
  DP_RETURN_IF_ERROR(ParseDevices(root_, devices, true));
  DP_ASSIGN_OR_RETURN(FileLock lock,
                      FileLock::Acquire(root_, config_.lock_timeout));
  return Hide(devices, options, lock);
}

Result<OpReport> Hider::Hide(const std::vector<std::string>& devices,
                             const HideOptions& options,
                             const FileLock& /*held*/) {
  DP_ASSIGN_OR_RETURN(StubDriver stub, FindStub(options.driver));
  DP_ASSIGN_OR_RETURN(std::vector<PciAddress> requested,
                      ParseDevices(root_, devices, true));
  for (const auto& a : requested) {
    DP_ASSIGN_OR_RETURN(bool bridge, host::IsBridge(root_, a));
    if (bridge) {
      return MakeError(
          ErrorCode::kUnsupported,
          fmt::format("{} is a PCI bridge; bridges stay with the host "
                      "(a guest gets the devices behind them)",
                      a));
    }
    // Host and ISA/LPC bridges have header type 0, so IsBridge (the
    // kernel's viability rule) does not see them; they are the chipset.
    auto cls = ReadInt(root_.Sys("bus/pci/devices") / a.ToString() / "class");
    if (cls) {
      if (auto kind = host::BridgeKind(static_cast<uint32_t>(*cls));
          !kind.empty()) {
        return MakeError(
            ErrorCode::kUnsupported,
            fmt::format("{} is a {} (class 0x{:06x}), part of the host's "
                        "chipset; bridges stay with the host",
                        a, kind, *cls));
      }
    }
  }
  DP_ASSIGN_OR_RETURN(Ledger ledger, Ledger::Load(root_));
  Binder binder(root_, kernel_, config_.vfio_wait);

  // The set to hide: the request, plus with --group every other non-bridge
  // member of each group that is not on a stub driver yet.
  std::vector<PciAddress> targets = requested;
  std::vector<std::string> group_notes;
  for (const auto& a : requested) {
    DP_ASSIGN_OR_RETURN(auto group, host::ReadIommuGroup(root_, a));
    if (!group) {
      if (stub.vfio) {
        return MakeError(
            ErrorCode::kUnsupported,
            fmt::format(
                "{} has no IOMMU group (the IOMMU is off or absent), so "
                "vfio-pci cannot take it: the kernel refuses to bind "
                "vfio-pci without a group and no /dev/vfio node would "
                "exist. Enable the IOMMU (VT-d / AMD-Vi in the firmware, "
                "intel_iommu=on on the kernel command line) and check "
                "with 'devpass check', or only hide it with --driver "
                "pci-stub",
                a));
      }
      continue;
    }
    if (options.group) {
      for (const auto& m : group->members) {
        if (m.is_bridge || host::IsStubDriver(m.driver)) continue;
        if (std::find(targets.begin(), targets.end(), m.address) ==
            targets.end()) {
          targets.push_back(m.address);
          group_notes.push_back(
              fmt::format("{} (IOMMU group {}, {})", m.address, group->id,
                          m.driver.empty() ? "unbound" : m.driver));
        }
      }
      continue;
    }
    auto blocking = host::BlockingMembers(*group, requested);
    if (!blocking.empty()) {
      std::vector<std::string> names;
      for (const auto& m : blocking) {
        names.push_back(fmt::format("{} ({})", m.address, m.driver));
      }
      return MakeError(
          ErrorCode::kConflict,
          fmt::format(
              "cannot hide {} alone: its IOMMU group {} also holds {}, which "
              "the host uses; VFIO lets a guest use a group only when every "
              "member is unbound or on a stub driver. Hide the whole group "
              "with --group ('devpass hide --group {}'), or name every "
              "member. --force does not change this: the kernel would "
              "refuse the group anyway",
              a, group->id, Join(names, ", "), a));
    }
  }

  // Classify each device: already hidden, or to be moved (and from where).
  std::vector<Planned> plan;
  for (const auto& a : targets) {
    std::string current = binder.CurrentDriver(a);
    const LedgerEntry* entry = ledger.Find(a);
    DP_ASSIGN_OR_RETURN(auto persisted, persist_.Read(a));
    Planned p{a, current, false, ""};
    if (entry && entry->stub != stub.driver && current == entry->stub) {
      return MakeError(
          ErrorCode::kConflict,
          fmt::format("{} is already hidden with {}; unhide it first "
                      "to move it to {}",
                      a, entry->stub, stub.driver));
    }
    if (current == stub.driver) {
      p.already = true;
      if (entry) {
        p.original = entry->original_driver;
      } else if (persisted) {
        // Bound at boot through the udev rule before 'devpass restore' ran.
        p.original = persisted->original_driver;
      } else {
        p.original = "";
        p.note = fmt::format(
            "was already on {} (not by devpass; its earlier "
            "driver is unknown, unhide will leave it unbound)",
            stub.driver);
      }
    } else if (current.empty()) {
      // Unbound now; a driver recorded earlier (ledger from before a reboot,
      // or the persist file) is the one to give it back to.
      if (entry)
        p.original = entry->original_driver;
      else if (persisted)
        p.original = persisted->original_driver;
    }
    plan.push_back(std::move(p));
  }

  // Host-critical devices, unless --force.
  DP_ASSIGN_OR_RETURN(host::HostUsage usage, host::HostUsage::Scan(root_));
  std::vector<std::string> forced;
  for (const auto& p : plan) {
    if (p.already) continue;
    const auto& deps = usage.DependenciesOf(p.address);
    if (deps.empty()) continue;
    std::vector<std::string> why;
    for (const auto& d : deps) why.push_back(d.detail);
    if (!options.force) {
      return MakeError(
          ErrorCode::kUnsafe,
          fmt::format("refusing to hide {}: the host depends on it ({}); "
                      "hiding it would take that away from the running "
                      "host. Use --force if you are sure",
                      p.address, Join(why, "; ")));
    }
    forced.push_back(fmt::format("{}: hidden despite --force: {}", p.address,
                                 Join(why, "; ")));
  }

  // Load the module before anything changes, so a failure changes nothing.
  if (std::any_of(plan.begin(), plan.end(),
                  [](const Planned& p) { return !p.already; })) {
    DP_RETURN_IF_ERROR(binder.EnsureStubLoaded(stub));
  }
  DP_ASSIGN_OR_RETURN(OpReport report,
                      Apply(plan, stub, options.persist, options.assignment));
  std::vector<std::string> notes;
  for (auto& n : group_notes)
    notes.push_back("also hiding " + n + " (--group)");
  report.warnings.insert(report.warnings.begin(), notes.begin(), notes.end());
  for (auto& f : forced) report.warnings.push_back(std::move(f));
  return report;
}

Result<OpReport> Hider::Apply(const std::vector<Planned>& plan,
                              const StubDriver& stub, bool persist,
                              const std::optional<Assignment>& assignment) {
  Binder binder(root_, kernel_, config_.vfio_wait);
  DP_ASSIGN_OR_RETURN(Ledger ledger, Ledger::Load(root_));
  OpReport report;
  std::vector<JournalRecord> done;  // moved in this call, journal still there

  // Undoes everything this call did, newest first; returns what happened.
  auto undo = [&](const Error& cause) {
    std::vector<std::string> back;
    for (auto it = done.rbegin(); it != done.rend(); ++it) {
      auto r = binder.RollBack(it->address, stub, it->original_driver);
      if (it->persist_created) (void)persist_.Remove(it->address);
      if (r) {
        (void)journal_.Remove(it->address);
        back.push_back(fmt::format("{}: {}", it->address,
                                   DescribeReturn(*r, it->original_driver)));
      } else {
        back.push_back(
            fmt::format("{}: rollback failed ({}); the journal keeps it "
                        "for the next devpass run",
                        it->address, r.error().ToString()));
      }
    }
    Error e = cause;
    if (!back.empty()) e.message += "; also rolled back " + Join(back, ", ");
    return tl::unexpected(e);
  };

  for (const auto& p : plan) {
    if (p.already) continue;
    JournalRecord rec;
    rec.op = "hide";
    rec.address = p.address;
    rec.stub = std::string(stub.driver);
    rec.original_driver = p.original;
    rec.persist = persist;
    rec.persist_created = persist && !Exists(persist_.FileFor(p.address));
    rec.pid = static_cast<int>(::getpid());
    rec.started = NowIso8601();
    if (devpass::Status s = journal_.Write(rec); !s) return undo(s.error());
    CrashPoint("hide", "after-journal");
    done.push_back(rec);
    StepHook hook = [&](std::string_view step) -> devpass::Status {
      done.back().step = std::string(step);
      DP_RETURN_IF_ERROR(journal_.Write(done.back()));
      CrashPoint("hide", "after-" + std::string(step));
      return Ok();
    };
    auto bound = binder.BindToStub(p.address, stub, p.original, hook);
    if (!bound) {
      // BindToStub rolled this device back itself.
      (void)journal_.Remove(p.address);
      done.pop_back();
      return undo(bound.error());
    }
    DeviceResult d;
    d.address = p.address;
    d.action = DeviceResult::Action::kHidden;
    d.stub = std::string(stub.driver);
    d.original_driver = p.original;
    d.driver = bound->driver;
    d.vfio_node = bound->vfio_node;
    report.devices.push_back(std::move(d));
    for (auto& w : bound->warnings) report.warnings.push_back(std::move(w));
  }

  for (const auto& p : plan) {
    if (persist && !Exists(persist_.FileFor(p.address))) {
      devpass::Status s =
          persist_.Add({p.address, std::string(stub.driver), p.original});
      if (!s) return undo(s.error());
    }
  }
  std::vector<DeviceResult> already;
  for (const auto& p : plan) {
    const LedgerEntry* old = ledger.Find(p.address);
    LedgerEntry e;
    e.address = p.address;
    e.stub = std::string(stub.driver);
    e.original_driver = p.original;
    e.ids = binder.Ids(p.address);
    e.persisted = Exists(persist_.FileFor(p.address));
    e.hidden_since = old && p.already ? old->hidden_since : NowIso8601();
    if (old) e.assignment = old->assignment;
    if (!p.already && assignment) e.assignment = assignment;
    bool record = !p.already || old || e.persisted || p.note.empty();
    if (p.already) {
      DeviceResult d;
      d.address = p.address;
      d.action = DeviceResult::Action::kAlreadyHidden;
      d.stub = e.stub;
      d.original_driver = p.original;
      d.driver = std::string(stub.driver);
      d.persisted = e.persisted;
      d.message = p.note;
      if (auto g = binder.IommuGroupId(p.address);
          g && stub.vfio && Exists(root_.Dev("vfio") / std::to_string(*g))) {
        d.vfio_node = fmt::format("/dev/vfio/{}", *g);
      }
      already.push_back(std::move(d));
    }
    if (record) ledger.Upsert(std::move(e));
  }
  if (devpass::Status s = ledger.Save(); !s) return undo(s.error());
  for (const auto& rec : done) (void)journal_.Remove(rec.address);

  for (auto& d : report.devices) {
    d.persisted = Exists(persist_.FileFor(d.address));
    std::string vfio =
        d.vfio_node.empty() ? "" : fmt::format(" ({})", d.vfio_node);
    d.message = fmt::format(
        "{}: hidden: {} -> {}{}", d.address,
        d.original_driver.empty() ? "(no driver)" : d.original_driver, d.driver,
        vfio);
  }
  for (auto& d : already) {
    std::string vfio =
        d.vfio_node.empty() ? "" : fmt::format(" ({})", d.vfio_node);
    d.message = fmt::format("{}: already hidden on {}{}{}", d.address, d.stub,
                            vfio, d.message.empty() ? "" : "; " + d.message);
    report.devices.push_back(std::move(d));
  }
  std::sort(report.devices.begin(), report.devices.end(),
            [](const auto& a, const auto& b) { return a.address < b.address; });
  return report;
}

}  // namespace devpass::hiding
