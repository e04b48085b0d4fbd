#pragma once

// Puts a Linux kernel into guest RAM the way a 64-bit boot loader does
// (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL"): the
// protected-mode kernel at 0x100000, the command line, the initrd at the
// highest suitable address, and boot_params (the zero page) with a copy of
// the setup header and the e820 memory map. Entry: 64-bit, at load + 0x200,
// RSI = boot_params.

#include <asm/bootparam.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "vmm/bzimage.h"
#include "vmm/guest_memory.h"
#include "vmm/layout.h"

namespace devpass::vmm {

// e820 types (ACPI 6.x table 15-312, as Linux names them).
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
  uint64_t addr = 0;
  uint64_t size = 0;
  uint32_t type = 0;
  bool operator==(const E820Entry&) const = default;
};

// The guest's memory map: RAM below the MP table, the MP table (reserved),
// the 640 KiB-1 MiB hole (absent), RAM from 1 MiB to the PCI hole, the IOAPIC
// and LAPIC pages and KVM's private pages (reserved), RAM above 4 GiB.
std::vector<E820Entry> BuildE820(const std::vector<RamRegion>& ram);

struct InitrdPlacement {
  Gpa addr;
  uint64_t size = 0;
};
// Highest page-aligned address with the initrd below both initrd_addr_max
// and the top of low RAM, and above everything the kernel may use while
// decompressing (load address + init_size, and pref_address + init_size).
Result<InitrdPlacement> PlaceInitrd(const BzImage& img, Gpa low_ram_end,
                                    uint64_t size);

// boot_params for `img`: `file` is the whole bzImage (its setup header is
// copied in). No memory is touched.
boot_params BuildBootParams(const BzImage& img, std::span<const uint8_t> file,
                            const InitrdPlacement& initrd,
                            const std::vector<E820Entry>& e820);

struct LinuxEntry {
  Gpa entry;        // 64-bit entry point
  Gpa boot_params;  // RSI
};

// Writes kernel, command line, initrd and boot_params into `mem`.
Result<LinuxEntry> LoadLinux(const GuestMemory& mem,
                             std::span<const uint8_t> file,
                             std::string_view kernel_path,
                             std::span<const uint8_t> initrd,
                             std::string_view cmdline);

}  // namespace devpass::vmm
