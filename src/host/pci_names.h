#pragma once

// Human names for PCI ids (vendor, device, subsystem, class) from the pci.ids
// database through libpci's pci_lookup_name. The database is looked for at
// <root>/usr/share/misc/pci.ids, then /usr/share/misc/pci.ids; without one,
// every lookup returns "" and callers show hex ids. Loading parses the whole
// file (~10 ms for 1.3 MB), so it happens once, on first use, and can be
// started early on another thread with Preload().

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "base/root.h"

namespace devpass::host {

class PciNames {
 public:
  // Never fails: a missing or broken pci.ids only means "no names".
  explicit PciNames(const Root& root);
  ~PciNames();
  PciNames(const PciNames&) = delete;
  PciNames& operator=(const PciNames&) = delete;

  // Loads the database now; later lookups do not pay for it. Safe to call
  // from another thread as long as no lookup runs concurrently.
  void Preload();

  // The pci.ids in use, nullopt when none was found.
  const std::optional<std::filesystem::path>& ids_path() const {
    return ids_path_;
  }

  // "" when unknown.
  std::string Vendor(uint16_t vendor);
  std::string Device(uint16_t vendor, uint16_t device);
  std::string Subsystem(uint16_t vendor, uint16_t device,
                        uint16_t subsystem_vendor, uint16_t subsystem_device);
  // By base class and subclass ("Ethernet controller"); falls back to the base
  // class name ("Network controller") when the subclass is not listed.
  std::string Class(uint32_t class_code);

 private:
  struct Access;  // RAII wrapper around libpci's pci_access
  bool EnsureLoaded();

  std::optional<std::filesystem::path> ids_path_;
  std::unique_ptr<Access> access_;
  bool load_attempted_ = false;
  bool usable_ = false;
};

// Short class names for tables, independent of pci.ids ("network",
// "storage", "display", "bridge", "usb", "serial", ...); "" for classes
// without one. Also the names `devpass list --class` accepts.
std::string ShortClassName(uint32_t class_code);

}  // namespace devpass::host
