#pragma once

// The Intel MultiProcessor Specification 1.4 tables that tell an ACPI-less
// Linux how many CPUs there are and how ISA interrupts reach the IOAPIC:
//
//   MP configuration table (§4.2, "PCMP") at layout::kMpTable:
//     processor entries (one per vCPU, APIC ID = vCPU index, #0 the BSP),
//     bus entries (0 = "PCI   ", 1 = "ISA   "),
//     one IOAPIC entry (ID = number of vCPUs, at layout::kIoApic),
//     I/O interrupt entries: ISA IRQ n -> IOAPIC pin n for n = 0..15
//       (KVM's default GSI routing wires them 1:1, IRQ 0 included), then
//       PCI INTx: for every slot 1..31 and pin INTA#..INTD# of bus 0, source
//       bus IRQ = slot << 2 | (pin - 1) (§D.3: bits 6:2 device, 1:0 pin)
//       -> IOAPIC pin layout::PciIntxGsi(slot, pin), level-triggered active
//       low (PCI Local Bus 3.0 §2.2.6),
//     local interrupt entries: ExtINT -> LINT0, NMI -> LINT1 of every CPU;
//   MP floating pointer (§4.1, 16 bytes, "_MP_") at
//   layout::kMpFloatingPointer, in the last KiB of base memory where Linux
//   looks for it (smp_scan_config), pointing back at the table.
//
// Every slot is described, used or not, so that the table can be written
// before devices are added and says the same as the ACPI _PRT: 124 PCI
// entries make the table 1.8 KiB at 32 vCPUs, which is why it sits in the
// 3 KiB before the floating pointer rather than after it.
//
// devpass describes CPUs with an MP table rather than an ACPI MADT: it is
// self-contained (no AML), Linux 6.x still parses it when there is no RSDP,
// and the PCI bus is found through configuration mechanism #1 anyway.

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "vmm/layout.h"

namespace devpass::vmm {

inline constexpr int kMaxVcpus = 32;  // the table fits in its 3 KiB
inline constexpr uint8_t kApicVersion = 0x14;
inline constexpr uint8_t kIoApicVersion = 0x11;

// Entry types (§4.3).
inline constexpr uint8_t kMpProcessor = 0;
inline constexpr uint8_t kMpBus = 1;
inline constexpr uint8_t kMpIoApic = 2;
inline constexpr uint8_t kMpIoInterrupt = 3;
inline constexpr uint8_t kMpLocalInterrupt = 4;

// Where the floating pointer sits relative to the table's base.
inline constexpr uint64_t kMpFloatingOffset =
    layout::kMpFloatingPointer.value - layout::kMpTable.value;
// I/O interrupt entry flags (§4.3.4, table 4-10): polarity bits 1:0,
// trigger mode bits 3:2; 0 = conforms to the bus.
inline constexpr uint16_t kMpPciIntxFlags =
    0x3 | (0x3 << 2);                      // active low, level
inline constexpr int kMpFirstPciSlot = 1;  // slot 0 is the host bridge

// The bytes to copy at `base`: the configuration table at base, zeros, the
// floating pointer at base + kMpFloatingOffset (so kMpFloatingOffset + 16
// bytes in all).
Result<std::vector<uint8_t>> BuildMpTable(int cpus, Gpa base);

// Sum of bytes mod 256 (every MP structure must sum to 0).
uint8_t ByteSum(const uint8_t* data, size_t len);

}  // namespace devpass::vmm
