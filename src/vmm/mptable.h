#pragma once

// The Intel MultiProcessor Specification 1.4 tables that tell an ACPI-less
// Linux how many CPUs there are and how ISA interrupts reach the IOAPIC:
//
//   MP floating pointer (§4.1, 16 bytes, "_MP_") at layout::kMpTable,
//   followed by the MP configuration table (§4.2, "PCMP"):
//     processor entries (one per vCPU, APIC ID = vCPU index, #0 the BSP),
//     bus entries (0 = "PCI   ", 1 = "ISA   "),
//     one IOAPIC entry (ID = number of vCPUs, at layout::kIoApic),
//     I/O interrupt entries: ISA IRQ n -> IOAPIC pin n for n = 0..15
//       (KVM's default GSI routing wires them 1:1, IRQ 0 included),
//     local interrupt entries: ExtINT -> LINT0, NMI -> LINT1 of every CPU.
//
// devpass describes CPUs with an MP table rather than an ACPI MADT: it is
// self-contained (no AML), Linux 6.x still parses it when there is no RSDP,
// and the PCI bus is found through configuration mechanism #1 anyway.

#include <cstdint>
#include <vector>

#include "base/error.h"
#include "vmm/layout.h"

namespace devpass::vmm {

inline constexpr int kMaxVcpus = 32;  // floating pointer + table fit in 1 KiB
inline constexpr uint8_t kApicVersion = 0x14;
inline constexpr uint8_t kIoApicVersion = 0x11;

// Entry types (§4.3).
inline constexpr uint8_t kMpProcessor = 0;
inline constexpr uint8_t kMpBus = 1;
inline constexpr uint8_t kMpIoApic = 2;
inline constexpr uint8_t kMpIoInterrupt = 3;
inline constexpr uint8_t kMpLocalInterrupt = 4;

// The bytes to copy at `base` (floating pointer first, config table right
// after it, so its physical address is base + 16).
Result<std::vector<uint8_t>> BuildMpTable(int cpus, Gpa base);

// Sum of bytes mod 256 (every MP structure must sum to 0).
uint8_t ByteSum(const uint8_t* data, size_t len);

}  // namespace devpass::vmm
