// Status and recovery of interrupted operations (hider.h, journal.h).

#include "base/fs.h"
#include "base/lock.h"
#include "hiding/binder.h"
#include "hiding/hider.h"

namespace devpass::hiding {

Result<StatusReport> Hider::Status() const {
  StatusReport report;
  DP_ASSIGN_OR_RETURN(Ledger ledger, Ledger::Load(root_));
  // Binder only reads here; it needs a Kernel reference for its writes.
  Binder binder(root_, kernel_, config_.vfio_wait);
  for (const auto& e : ledger.entries()) {
    StatusEntry s;
    s.entry = e;
    s.present = binder.DeviceExists(e.address);
    s.current_driver = s.present ? binder.CurrentDriver(e.address) : "";
    s.drifted = !s.present || s.current_driver != e.stub;
    s.entry.persisted = Exists(persist_.FileFor(e.address));
    if (e.assignment) s.owner = ProbeOwner(root_, *e.assignment);
    if (s.drifted) {
      report.warnings.push_back(
          s.present
              ? fmt::format(
                    "{} should be on {} but is on {}; run 'devpass hide {}' "
                    "to hide it again or 'devpass unhide {}' to forget it",
                    e.address, e.stub,
                    s.current_driver.empty() ? "no driver" : s.current_driver,
                    e.address, e.address)
              : fmt::format(
                    "{} is in the ledger but no longer exists; 'devpass "
                    "unhide {}' forgets it",
                    e.address, e.address));
    }
    report.hidden.push_back(std::move(s));
  }
  auto persisted = persist_.List();
  if (!persisted) {
    report.warnings.push_back(persisted.error().ToString());
  } else {
    for (auto& h : *persisted) {
      if (!ledger.Find(h.address))
        report.persisted_only.push_back(std::move(h));
    }
  }
  JournalScan scan = journal_.List();
  report.pending = std::move(scan.records);
  for (const auto& e : scan.unreadable) report.warnings.push_back(e.ToString());
  return report;
}

RepairReport Hider::RepairInterrupted() {
  RepairReport report;
  if (journal_.Empty()) return report;
  // A record may belong to a devpass that is still running: the lock waits
  // for it, and its records are gone once it finishes.
  auto lock = FileLock::Acquire(root_, config_.repair_lock_timeout);
  if (!lock) {
    report.failed.push_back(
        "cannot take the devpass lock to repair interrupted "
        "operations (they may belong to the devpass that holds "
        "it; the next command checks again): " +
        lock.error().ToString());
    return report;
  }
  JournalScan scan = journal_.List();
  for (const auto& e : scan.unreadable) report.failed.push_back(e.ToString());
  if (scan.records.empty()) return report;
  auto ledger = Ledger::Load(root_);
  if (!ledger) {
    report.failed.push_back(ledger.error().ToString());
    return report;
  }
  Binder binder(root_, kernel_, config_.vfio_wait);
  for (const auto& rec : scan.records) {
    std::string what = fmt::format("'{} {}' was interrupted at step {}", rec.op,
                                   rec.address, rec.step);
    auto fail = [&](const Error& e) {
      report.failed.push_back(fmt::format(
          "cannot repair: {}: {}; the journal record "
          "{} is kept for the next try",
          what, e.ToString(), root_.Display(journal_.PathFor(rec.address))));
    };
    auto stub = FindStub(rec.stub);
    if (!stub) {
      fail(stub.error());
      continue;
    }
    std::string outcome;
    if (!binder.DeviceExists(rec.address)) {
      outcome = "the device no longer exists; forgot it";
    } else if (rec.op == "hide") {
      auto back = binder.RollBack(rec.address, *stub, rec.original_driver);
      if (!back) {
        fail(back.error());
        continue;
      }
      outcome = "rolled back: " + DescribeReturn(*back, rec.original_driver);
    } else {
      auto done =
          binder.ReleaseFromStub(rec.address, *stub, rec.original_driver,
                                 [](std::string_view) { return Ok(); });
      if (!done) {
        fail(done.error());
        continue;
      }
      outcome =
          "completed: " + DescribeReturn(done->driver, rec.original_driver);
    }
    // A hide never reached its end, so nothing of it may stay: no ledger
    // entry, no persist file it created. An unhide is finished: the same.
    if (ledger->Remove(rec.address)) {
      if (auto s = ledger->Save(); !s) {
        fail(s.error());
        continue;
      }
    }
    bool drop_persist = rec.op == "hide" ? rec.persist_created : rec.persist;
    if (drop_persist) {
      if (auto s = persist_.Remove(rec.address); !s) {
        fail(s.error());
        continue;
      }
    }
    if (auto s = journal_.Remove(rec.address); !s) {
      fail(s.error());
      continue;
    }
    report.repaired.push_back(what + "; " + outcome);
  }
  return report;
}

}  // namespace devpass::hiding
