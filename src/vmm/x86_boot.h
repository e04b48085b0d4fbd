#pragma once

// The CPU state a 64-bit Linux entry expects, built without firmware
// (boot.rst "64-bit BOOT PROTOCOL"): long mode with paging, an identity map
// covering the kernel, boot_params and the command line, a GDT whose
// selector 0x10 is a flat 64-bit code segment and 0x18 a flat data segment,
// interrupts off, RSI = boot_params. Everything here is a pure function of
// its inputs so it is unit tested without KVM.

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <vector>

#include "vmm/kvm_api.h"
#include "vmm/layout.h"

namespace devpass::vmm {

// Selectors (boot.rst: __BOOT_CS = 0x10, __BOOT_DS = 0x18).
inline constexpr uint16_t kBootCs = 0x10;
inline constexpr uint16_t kBootDs = 0x18;
inline constexpr uint16_t kBootTss = 0x20;

// Control register and EFER bits (Intel SDM vol. 3 §2.5, §2.2.1).
inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Et = 1ull << 4;
inline constexpr uint64_t kCr0Nw = 1ull << 29;
inline constexpr uint64_t kCr0Cd = 1ull << 30;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;

// GDT descriptors: null, null, code (0x10), data (0x18), TSS (0x20).
std::array<uint64_t, 5> BootGdt();
// Builds one descriptor (SDM vol. 3 §3.4.5): `flags` holds the access byte
// in bits 0-7 and G/DB/L/AVL in bits 12-15.
uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit);

// PML4 + PDPT + 4 page directories mapping [0, 4 GiB) 1:1 with 2 MiB pages,
// as one contiguous image to write at layout::kPml4 (6 pages).
std::vector<uint8_t> BuildIdentityPageTables();

// Long-mode system registers on top of what KVM_GET_SREGS returned (which
// carries the APIC base and other state we keep).
kvm_sregs LongModeSregs(kvm_sregs s);
kvm_regs BootRegs(Gpa entry, Gpa boot_params);
kvm_fpu BootFpu();
std::vector<Msr> BootMsrs();

// LINT0 = ExtINT (the 8259 PIC's output), LINT1 = NMI: the virtual-wire
// setup a PC BIOS leaves (Intel MP 1.4 §3.6.2.2), before Linux takes over.
void SetLintVirtualWire(kvm_lapic_state& lapic);

// CPUID for vCPU `index` of `count`, from KVM_GET_SUPPORTED_CPUID:
//  - leaf 1: initial APIC ID = index, logical count, hypervisor bit set
//  - leaf 0xB / 0x1F: x2APIC ID = index in EDX
//  - 0x40000000: "KVMKVMKVM" signature, so the guest uses kvmclock
//  - leaf 6 (thermal/power) cleared: no such MSRs are emulated
//  - 0x8000001F (AMD SME/SEV) cleared: not an encrypted guest
std::vector<kvm_cpuid_entry2> FilterCpuid(
    std::vector<kvm_cpuid_entry2> supported, int index, int count);

}  // namespace devpass::vmm
