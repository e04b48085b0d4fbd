#pragma once

// BARs and the expansion ROM of a function, from the sysfs `resource` file:
// one line per resource, "0x<start> 0x<end> 0x<flags>", lines 0-5 the BARs,
// line 6 the expansion ROM, then bridge windows or SR-IOV VF BARs (which are
// not reported here). Flags are the kernel's IORESOURCE_* bits
// (include/linux/ioport.h).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::host {

// IORESOURCE_* flags of include/linux/ioport.h.
inline constexpr uint64_t kIoResourceIo = 0x00000100;
inline constexpr uint64_t kIoResourceMem = 0x00000200;
inline constexpr uint64_t kIoResourcePrefetch = 0x00002000;
inline constexpr uint64_t kIoResourceMem64 = 0x00100000;

// Line index of the expansion ROM (PCI_ROM_RESOURCE).
inline constexpr int kRomResourceIndex = 6;

enum class BarKind { kIo, kMem32, kMem64 };
std::string_view BarKindName(BarKind kind);  // "io", "mem32", "mem64"

struct Bar {
  int index = 0;  // 0..5, or 6 for the ROM
  uint64_t start = 0;
  uint64_t size = 0;  // bytes
  BarKind kind = BarKind::kMem32;
  bool prefetchable = false;
  bool is_rom = false;
};

// Parses the text of a `resource` file. Unused resources (all zero, or
// without IO/MEM flags) are left out; malformed lines are skipped.
std::vector<Bar> ParseResources(std::string_view text);

// Reads <dev>/resource and parses it.
Result<std::vector<Bar>> ReadBars(const Root& root, const PciAddress& address);

// "256 MiB", "4 KiB", "16 GiB", "100 B".
std::string HumanSize(uint64_t bytes);

}  // namespace devpass::host
