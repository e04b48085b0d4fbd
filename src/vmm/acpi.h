#pragma once

// The ACPI tables devpass gives a guest (ACPI 6.5), so that Linux powers
// off with a stock `poweroff`, finds the PCI root bridge with its windows
// and INTx routing, and sees every CPU:
//
//   RSDP (rev 2, §5.2.5) at layout::kAcpiTables -> XSDT (§5.2.8) ->
//     FADT (rev 6.5, §5.2.9): full fixed hardware, not HW_REDUCED_ACPI (see
//       below): PM1a event block at layout::kAcpiPm1aEventPort, PM1a
//       control block at layout::kAcpiPm1aControlPort, SCI on IRQ 9, no
//       SMI command port (always in ACPI mode), no PM timer, no GPE
//       blocks; RESET_REG = the i8042 command port, value 0xFE; no fixed
//       power/sleep buttons; IA-PC boot flags: legacy devices, no VGA, no
//       ASPM, no 8042 (so Linux does not probe the reset-only i8042 stub).
//       -> FACS (§5.2.10), -> DSDT (X_DSDT)
//     MADT (rev 5, §5.2.12): one local APIC per vCPU (ACPI UID = APIC ID =
//       vCPU index), the IOAPIC (ID = vCPU count, as in the MP table) at
//       layout::kIoApic with GSI base 0, interrupt source overrides, LINT1
//       = NMI on every CPU.
//   DSDT (rev 2: 64-bit integers), AML from vmm/aml.h:
//     \_S5  Package {kAcpiS5SleepType, 0, 0, 0}
//     \_SB.PCI0  the PCI root bridge: _HID/_CID PNP0A03, _SEG 0, _BBN 0,
//       _UID 0, _CRS (buses 0-255, ports 0xCF8-0xCFF consumed, I/O
//       0x0000-0x0CF7 and 0x0D00-0xFFFF, memory [layout::kPciHole,
//       layout::kPciHoleMmioEnd) and the 64-bit window
//       layout::Mmio64Base(ram_end) + layout::kMmio64Size), _PRT: INTA-INTD
//       of slots 1-31 to GSI layout::PciIntxGsi(slot, pin)
//     \_SB.COM1 (PNP0501: 0x3F8, IRQ 4), \_SB.RTC (PNP0B00: 0x70, IRQ 8)
//
// Why not HW_REDUCED_ACPI: in hardware-reduced mode Linux assumes no 8259
// and no PIT (acpi_generic_reduced_hw_init: legacy_pic = null_legacy_pic,
// no timer_init), so it neither programs nor masks KVM's in-kernel PIC.
// That PIC still receives every ISA IRQ (KVM's default routing feeds GSI
// 0-15 to PIC and IOAPIC) and, uninitialised, delivers IRQ n as vector n
// through the boot CPU's LINT0 (ExtINT): COM1's IRQ 4 would arrive as
// exception #4. Linux also makes no ISA IRQ mappings then
// (nr_legacy_irqs() = 0). With fixed hardware the guest keeps the legacy
// interrupt model it has under the MP table (8259 masked, timer through
// IOAPIC pin 0) and ACPI only adds the PM1 registers, which are tiny.
//
// Interrupt source overrides: KVM's in-kernel PIT raises GSI 0 and KVM
// routes GSI n to IOAPIC pin n (a PC routes IRQ 0 to pin 2), so IRQ 0 ->
// GSI 0, stated explicitly; the SCI, IRQ 9 -> GSI 9 level-triggered, active
// high (KVM's IOAPIC ignores polarity; the line is only ever raised high).
// Other ISA IRQs are identity mapped, edge, active high by default, which
// is what the MP table says.

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "vmm/aml.h"
#include "vmm/layout.h"

namespace devpass::vmm {

// SLP_TYP of \_S5 (any 3-bit value; the guest writes it back into PM1_CNT).
inline constexpr uint8_t kAcpiS5SleepType = 5;

// PM1 register bits (ACPI 6.5 §4.8.3.1.1, §4.8.3.2.1).
inline constexpr uint16_t kPm1SciEn = 1u << 0;  // PM1_CNT: ACPI mode
inline constexpr int kPm1SlpTypShift = 10;      // PM1_CNT bits 12:10
inline constexpr uint16_t kPm1SlpTypMask = 7u << 10;
inline constexpr uint16_t kPm1SlpEn = 1u << 13;   // PM1_CNT, write-only
inline constexpr uint16_t kPm1WakSts = 1u << 15;  // PM1_STS

// Table signatures and a few layout facts tests and docs rely on.
inline constexpr char kAcpiOemId[] = "DEVPAS";         // 6 bytes
inline constexpr char kAcpiOemTableId[] = "DEVPASS ";  // 8 bytes
inline constexpr uint32_t kAcpiHeaderSize = 36;
inline constexpr uint32_t kRsdpSize = 36;
inline constexpr uint32_t kFadtSize = 276;  // ACPI 6.0 and later
inline constexpr uint32_t kFacsSize = 64;

// FADT field offsets (ACPI 6.5 table 5.9).
namespace fadt {
inline constexpr uint32_t kFirmwareCtrl = 36;
inline constexpr uint32_t kDsdt = 40;
inline constexpr uint32_t kSciInt = 46;
inline constexpr uint32_t kSmiCmd = 48;
inline constexpr uint32_t kPm1aEvtBlk = 56;
inline constexpr uint32_t kPm1aCntBlk = 64;
inline constexpr uint32_t kPmTmrBlk = 76;
inline constexpr uint32_t kPm1EvtLen = 88;
inline constexpr uint32_t kPm1CntLen = 89;
inline constexpr uint32_t kPLvl2Lat = 96;
inline constexpr uint32_t kPLvl3Lat = 98;
inline constexpr uint32_t kCentury = 108;
inline constexpr uint32_t kIapcBootArch = 109;
inline constexpr uint32_t kFlags = 112;
inline constexpr uint32_t kResetReg = 116;  // a 12-byte Generic Address
inline constexpr uint32_t kResetValue = 128;
inline constexpr uint32_t kMinorVersion = 131;
inline constexpr uint32_t kXFirmwareCtrl = 132;
inline constexpr uint32_t kXDsdt = 140;
inline constexpr uint32_t kXPm1aEvtBlk = 148;
inline constexpr uint32_t kXPm1aCntBlk = 172;
inline constexpr uint32_t kSleepControlReg = 244;
inline constexpr uint32_t kSleepStatusReg = 256;
inline constexpr uint32_t kHypervisorVendor = 268;
// Flags (table 5.10).
inline constexpr uint32_t kWbinvd = 1u << 0;
inline constexpr uint32_t kProcC1 = 1u << 2;
inline constexpr uint32_t kPwrButton = 1u << 4;  // no fixed power button
inline constexpr uint32_t kSlpButton = 1u << 5;  // no fixed sleep button
inline constexpr uint32_t kResetRegSup = 1u << 10;
inline constexpr uint32_t kHwReducedAcpi = 1u << 20;
// IA-PC boot architecture flags (table 5.11).
inline constexpr uint16_t kLegacyDevices = 1u << 0;
inline constexpr uint16_t k8042 = 1u << 1;
inline constexpr uint16_t kVgaNotPresent = 1u << 2;
inline constexpr uint16_t kMsiNotSupported = 1u << 3;
inline constexpr uint16_t kPcieAspmControls = 1u << 4;
inline constexpr uint16_t kCmosRtcNotPresent = 1u << 5;
}  // namespace fadt

// MADT entry types (table 5.21) and the ISO flags used (table 5.26).
inline constexpr uint8_t kMadtLocalApic = 0;
inline constexpr uint8_t kMadtIoApic = 1;
inline constexpr uint8_t kMadtInterruptOverride = 2;
inline constexpr uint8_t kMadtLocalApicNmi = 4;
inline constexpr uint32_t kMadtPcatCompat = 1;  // a dual 8259 exists (KVM's)
inline constexpr uint16_t kIsoConforming = 0x0000;
inline constexpr uint16_t kIsoLevelActiveHigh = 0x000d;

struct AcpiConfig {
  int cpus = 1;
  // End of guest RAM (highest RAM address + 1, RAM above 4 GiB included):
  // the 64-bit PCI window starts at layout::Mmio64Base(ram_end).
  uint64_t ram_end = 0;
};

// The DSDT's AML (without its table header).
aml::Bytes BuildDsdtAml(const AcpiConfig& config);

// Every table, laid out from `base` (16-byte aligned, below 4 GiB): the
// bytes to copy to guest-physical `base`; the RSDP is first. Fails for a
// vCPU count outside 1..kMaxVcpus or tables beyond layout::kAcpiTablesMax.
Result<std::vector<uint8_t>> BuildAcpiTables(const AcpiConfig& config,
                                             Gpa base);

}  // namespace devpass::vmm
