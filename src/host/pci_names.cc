#include "host/pci_names.h"

#include <csetjmp>
#include <cstdarg>

extern "C" {
#include <pci/pci.h>
}

#include <fmt/format.h>

#include "base/fs.h"

namespace devpass::host {
namespace {

// Name lookups only: PCI_LOOKUP_NO_NUMBERS makes libpci return NULL instead
// of "Device 1234" when an id is unknown (we format ids ourselves), and
// PCI_LOOKUP_NO_HWDB keeps it from asking udev's hwdb, which describes the
// real host even when --root points at a fake tree. pci_init() is not
// needed: it selects a config access method, which lookups never use (but
// it is what installs the error/warning/debug hooks, so we set them).
constexpr int kLookupFlags = PCI_LOOKUP_NO_NUMBERS | PCI_LOOKUP_NO_HWDB;

// libpci reports a malformed pci.ids through pci_access::error, whose
// default prints and exit()s, and which must not return. We jump back to
// the load call instead and carry on without names. Only the loading
// thread sets and uses this buffer.
thread_local std::jmp_buf* g_load_jump = nullptr;

[[noreturn]] void OnLibpciError(char* /*msg*/, ...) {
  if (g_load_jump != nullptr) std::longjmp(*g_load_jump, 1);
  std::abort();  // unreachable: errors only come from loading
}

void OnLibpciMessage(char* /*msg*/, ...) {}

// Kept free of objects with destructors: longjmp skips them.
bool LoadGuarded(pci_access* acc) {
  std::jmp_buf jump;
  g_load_jump = &jump;
  if (setjmp(jump) != 0) {
    g_load_jump = nullptr;
    return false;
  }
  int ok = pci_load_name_list(acc);
  g_load_jump = nullptr;
  return ok != 0;
}

}  // namespace

struct PciNames::Access {
  pci_access* acc = nullptr;
  std::string path;  // pci_set_name_list_path keeps the pointer
  ~Access() {
    if (acc != nullptr) pci_cleanup(acc);
  }
};

PciNames::PciNames(const Root& root) {
  for (const auto& candidate :
       {root.Path("usr/share/misc/pci.ids"),
        std::filesystem::path("/usr/share/misc/pci.ids")}) {
    if (Exists(candidate)) {
      ids_path_ = candidate;
      break;
    }
  }
}

PciNames::~PciNames() = default;

void PciNames::Preload() { EnsureLoaded(); }

bool PciNames::EnsureLoaded() {
  if (load_attempted_) return usable_;
  load_attempted_ = true;
  if (!ids_path_) return false;
  access_ = std::make_unique<Access>();
  access_->acc = pci_alloc();
  if (access_->acc == nullptr) return false;
  access_->acc->error = OnLibpciError;
  // pci_alloc() leaves the message hooks NULL; pci_init() would fill them,
  // but we skip it, and a lookup miss calls a->debug: set all three.
  access_->acc->warning = OnLibpciMessage;
  access_->acc->debug = OnLibpciMessage;
  access_->path = ids_path_->string();
  pci_set_name_list_path(access_->acc, access_->path.data(), 0);
  usable_ = LoadGuarded(access_->acc);
  return usable_;
}

std::string PciNames::Vendor(uint16_t vendor) {
  if (!EnsureLoaded()) return "";
  char buf[256];
  const char* s = pci_lookup_name(access_->acc, buf, sizeof buf,
                                  PCI_LOOKUP_VENDOR | kLookupFlags, vendor);
  return s ? s : "";
}

std::string PciNames::Device(uint16_t vendor, uint16_t device) {
  if (!EnsureLoaded()) return "";
  char buf[256];
  const char* s =
      pci_lookup_name(access_->acc, buf, sizeof buf,
                      PCI_LOOKUP_DEVICE | kLookupFlags, vendor, device);
  return s ? s : "";
}

std::string PciNames::Subsystem(uint16_t vendor, uint16_t device,
                                uint16_t subsystem_vendor,
                                uint16_t subsystem_device) {
  if (!EnsureLoaded()) return "";
  char buf[256];
  const char* s =
      pci_lookup_name(access_->acc, buf, sizeof buf,
                      PCI_LOOKUP_SUBSYSTEM | PCI_LOOKUP_DEVICE | kLookupFlags,
                      vendor, device, subsystem_vendor, subsystem_device);
  return s ? s : "";
}

std::string PciNames::Class(uint32_t class_code) {
  if (!EnsureLoaded()) return "";
  char buf[256];
  int cls = static_cast<int>((class_code >> 8) & 0xffff);
  const char* s = pci_lookup_name(access_->acc, buf, sizeof buf,
                                  PCI_LOOKUP_CLASS | kLookupFlags, cls);
  if (s == nullptr) return "";
  // When only the base class is known, libpci appends the number
  // ("Serial bus controller [0c03]"); we show numbers ourselves.
  std::string name = s;
  std::string suffix = fmt::format(" [{:04x}]", cls);
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    name.resize(name.size() - suffix.size());
  }
  return name;
}

std::string ShortClassName(uint32_t class_code) {
  // Base classes from the PCI Code and ID Assignment Specification; a few
  // subclasses users look for by name get their own.
  uint16_t cls = static_cast<uint16_t>((class_code >> 8) & 0xffff);
  switch (cls) {
    case 0x0108:
      return "nvme";
    case 0x0403:
      return "audio";
    case 0x0c03:
      return "usb";
    default:
      break;
  }
  switch (cls >> 8) {
    case 0x00:
      return "unclassified";
    case 0x01:
      return "storage";
    case 0x02:
      return "network";
    case 0x03:
      return "display";
    case 0x04:
      return "multimedia";
    case 0x05:
      return "memory";
    case 0x06:
      return "bridge";
    case 0x07:
      return "serial";
    case 0x08:
      return "system";
    case 0x09:
      return "input";
    case 0x0a:
      return "docking";
    case 0x0b:
      return "processor";
    case 0x0c:
      return "serial-bus";
    case 0x0d:
      return "wireless";
    case 0x0e:
      return "intelligent";
    case 0x0f:
      return "satellite";
    case 0x10:
      return "encryption";
    case 0x11:
      return "signal-processing";
    case 0x12:
      return "accelerator";
    case 0x13:
      return "instrumentation";
    case 0x40:
      return "coprocessor";
    case 0xff:
      return "unassigned";
    default:
      return "";
  }
}

}  // namespace devpass::host
