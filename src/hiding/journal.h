#pragma once

// The journal makes hide and unhide crash-safe. Before devpass changes a
// device it writes an intent record to
// <root>/var/lib/devpass/journal/<BDF>.json and updates the record's `step`
// after each kernel write; the record is removed once the operation has
// completed or has been rolled back. A record that is still there when the
// next devpass starts means a devpass died half way: recovery (hider.h,
// RepairInterrupted) rolls an interrupted hide back and completes an
// interrupted unhide. Recovery looks at the device's actual state rather than
// trusting `step`, because a crash can fall between a kernel write and the
// journal update that records it.

#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::hiding {

struct JournalRecord {
  std::string op;  // "hide" or "unhide"
  PciAddress address;
  std::string stub;              // driver name
  std::string original_driver;   // "" when none
  std::string step = "started";  // last step completed
  bool persist = false;          // the operation was given --persist
  bool persist_created =
      false;  // hide: this operation created the persist file
  int pid = 0;
  std::string started;  // ISO 8601
};

struct JournalScan {
  std::vector<JournalRecord> records;
  std::vector<Error> unreadable;  // records that could not be parsed
};

class Journal {
 public:
  explicit Journal(const Root& root);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path PathFor(const PciAddress& address) const;

  // Atomic: a crash leaves the old or the new record, never half of one.
  Status Write(const JournalRecord& record) const;
  Status Remove(const PciAddress& address) const;
  JournalScan List() const;
  bool Empty() const;

 private:
  std::filesystem::path dir_;
};

}  // namespace devpass::hiding
