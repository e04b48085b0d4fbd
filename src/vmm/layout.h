#pragma once

// The guest's physical address map and fixed I/O ports: every address devpass
// places something at lives here, so that overlaps are visible in one file.
//
//   0x0000_0000  real-mode IVT / BIOS data area (left zero: no BIOS)
//   0x0000_0500  GDT (null, null, code 0x10, data 0x18, TSS 0x20)
//   0x0000_7000  boot_params, the "zero page" (boot.rst)
//   0x0000_9000  PML4, 0xA000 PDPT, 0xB000-0xEFFF four page directories:
//                identity map of the first 4 GiB with 2 MiB pages
//   0x0002_0000  kernel command line (up to cmdline_size)
//   0x0009_F000  MP configuration table (up to 3 KiB: CPUs, buses, IOAPIC,
//                ISA and PCI INTx interrupt entries), then at 0x9_FC00 the
//                MP floating pointer (Intel MP 1.4 §4: Linux searches the
//                last KiB of base memory); e820 reserved up to 0xA0000
//   0x000A_0000  legacy VGA / option ROM hole (not in e820)
//   0x000E_0000  ACPI tables: RSDP first (Linux scans 0xE0000-0xFFFFF for
//                "RSD PTR " on 16-byte boundaries), then XSDT, FADT, FACS,
//                MADT, DSDT; e820 reserved up to 1 MiB
//   0x0010_0000  protected-mode kernel (bzImage minus its setup sectors)
//      ...       RAM; the initrd at the top of RAM below initrd_addr_max
//   0xC000_0000  32-bit PCI hole: MMIO for BARs (up to 0xFEBF_FFFF)
//   0xFEC0_0000  IOAPIC (in-kernel irqchip)
//   0xFEE0_0000  local APICs
//   0xFFFB_C000  KVM identity-map page, 0xFFFB_D000 KVM TSS (3 pages; Intel
//                VMX needs them in guest-physical space, reserved in e820)
//   0x1_0000_0000 RAM above 4 GiB (what did not fit below the hole)
//   then         64-bit PCI MMIO window, 1 GiB aligned above RAM

#include <compare>
#include <cstdint>

namespace devpass::vmm {

// A guest-physical address. A distinct type so that host pointers, sizes and
// guest addresses cannot be mixed up.
struct Gpa {
  uint64_t value = 0;
  constexpr Gpa() = default;
  constexpr explicit Gpa(uint64_t v) : value(v) {}
  constexpr Gpa operator+(uint64_t off) const { return Gpa(value + off); }
  constexpr auto operator<=>(const Gpa&) const = default;
};

// A global system interrupt: the IOAPIC input pin (= ISA IRQ for 0-15 with
// KVM's default routing).
struct Gsi {
  uint32_t value = 0;
  constexpr Gsi() = default;
  constexpr explicit Gsi(uint32_t v) : value(v) {}
  constexpr auto operator<=>(const Gsi&) const = default;
};

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;
inline constexpr uint64_t kPageSize = 4096;

namespace layout {

inline constexpr Gpa kGdt{0x500};
inline constexpr Gpa kBootParams{0x7000};
inline constexpr Gpa kPml4{0x9000};
inline constexpr Gpa kPdpt{0xa000};
inline constexpr Gpa kPageDirectories{0xb000};  // 4 pages
inline constexpr uint64_t kIdentityMappedBytes = 4 * kGiB;
inline constexpr Gpa kCmdline{0x20000};
inline constexpr uint64_t kCmdlineMax = 0x10000;
// The MP tables' reserved area, [kMpTable, kMpTable + kMpTableMax): the
// configuration table at its start, the floating pointer in its last KiB.
// 4 KiB rather than the 1 KiB at 639 KiB that holds CPUs and ISA IRQs
// alone: one I/O interrupt entry per PCI slot and pin (31 x 4 x 8 bytes)
// does not fit there.
inline constexpr Gpa kMpTable{0x9f000};            // = 636 KiB
inline constexpr uint64_t kMpTableMax = 0x1000;    // up to 0xA0000
inline constexpr Gpa kMpFloatingPointer{0x9fc00};  // = 639 KiB
inline constexpr Gpa kBaseMemoryEnd{0xa0000};      // 640 KiB
// ACPI tables (src/vmm/acpi.h), in the BIOS area below 1 MiB where the
// ACPI spec (6.5 §5.2.5.1) puts the RSDP on a PC without UEFI.
inline constexpr Gpa kAcpiTables{0xe0000};
inline constexpr uint64_t kAcpiTablesMax = 0x20000;  // up to 1 MiB
inline constexpr Gpa kHighMemory{0x100000};          // 1 MiB
inline constexpr Gpa kKernelLoad{0x100000};
inline constexpr uint64_t kKernel64EntryOffset =
    0x200;  // boot.rst "64-bit BOOT PROTOCOL"

inline constexpr Gpa kPciHole{0xc0000000};  // RAM below 4 GiB ends here
inline constexpr Gpa kPciHoleMmioEnd{
    0xfec00000};  // BAR space: [kPciHole, this)
inline constexpr Gpa kIoApic{0xfec00000};
inline constexpr Gpa kLocalApic{0xfee00000};
inline constexpr Gpa kKvmIdentityMap{0xfffbc000};
inline constexpr Gpa kKvmTss{0xfffbd000};
inline constexpr uint64_t kKvmPrivateBytes = 4 * kPageSize;
inline constexpr Gpa k4GiB{4 * kGiB};
inline constexpr uint64_t kMmio64Alignment = kGiB;
inline constexpr uint64_t kMmio64Size = 64 * kGiB;
// The guest's PCI windows, where devpass places BARs (as firmware would):
// 32-bit memory BARs in [kPciHole, kPciHoleMmioEnd), 64-bit memory BARs in
// the 64-bit window (base: Mmio64Base(), kMmio64Size long), I/O BARs in
// [kPciIoStart, kPciIoEnd).
inline constexpr uint16_t kPciIoStart = 0xc000;
inline constexpr uint32_t kPciIoEnd = 0x10000;
// The 64-bit window starts at the first kMmio64Alignment boundary at or
// above the end of RAM (RAM above 4 GiB included) and never below 4 GiB.
constexpr Gpa Mmio64Base(uint64_t ram_end) {
  uint64_t end = ram_end < k4GiB.value ? k4GiB.value : ram_end;
  return Gpa((end + kMmio64Alignment - 1) / kMmio64Alignment *
             kMmio64Alignment);
}
// PCI INTx wiring (PCI Local Bus 3.0 §2.2.6): INTA#..INTD# (pin 1..4) of
// device `slot` on bus 0 reach IOAPIC inputs 16-23, rotated by slot as
// boards swizzle them so that neighbours' INTA# do not share a line. The MP
// table (and ACPI _PRT) describe exactly this map.
inline constexpr uint32_t kPciIntxFirstGsi = 16;
inline constexpr uint32_t kPciIntxGsiCount = 8;
constexpr Gsi PciIntxGsi(int slot, int pin) {
  return Gsi(kPciIntxFirstGsi +
             static_cast<uint32_t>((slot + pin - 1) %
                                   static_cast<int>(kPciIntxGsiCount)));
}
// MSI routes use GSIs from here up (0-23 are the IOAPIC inputs).
inline constexpr uint32_t kFirstMsiGsi = 24;
// x86 MSI messages target the local APIC window (Intel SDM vol. 3 §10.11.1).
inline constexpr uint64_t kMsiAddressBase = 0xfee00000;
inline constexpr uint64_t kMsiAddressSize = 0x100000;

// I/O ports.
inline constexpr uint16_t kI8042DataPort = 0x60;  // keyboard controller data
inline constexpr uint16_t kI8042CommandPort =
    0x64;                                   // 0xFE written here = CPU reset
inline constexpr uint16_t kRtcPort = 0x70;  // MC146818 index, 0x71 data
inline constexpr uint16_t kCom1Port = 0x3f8;
inline constexpr Gsi kCom1Gsi{4};
// devpass power-off port: a byte written here powers the guest off (see
// docs/vmm.md "Power-off"). 0x501-0x502 is where QEMU's isa-debug-exit sits
// by convention; nothing on a PC uses it.
inline constexpr uint16_t kPowerOffPort = 0x501;
// ACPI fixed hardware (ACPI 6.5 §4.8.3), where ICH9 puts it: the PM1a
// event block (PM1_STS, PM1_EN: 2 bytes each) and right after it the PM1a
// control block (PM1_CNT, 2 bytes; SLP_EN with \_S5's SLP_TYP powers the
// guest off). No PM timer, no GPE blocks. The SCI is ISA IRQ 9, as on PCs.
inline constexpr uint16_t kAcpiPm1aEventPort = 0x600;
inline constexpr uint16_t kAcpiPm1aControlPort = 0x604;
inline constexpr Gsi kAcpiSciGsi{9};

}  // namespace layout
}  // namespace devpass::vmm
