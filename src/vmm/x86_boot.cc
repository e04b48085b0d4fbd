#include "vmm/x86_boot.h"

#include <cstring>

namespace devpass::vmm {

uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((static_cast<uint64_t>(base) & 0xff000000ull) << 32) |
         ((static_cast<uint64_t>(flags) & 0x0000f0ffull) << 40) |
         ((static_cast<uint64_t>(limit) & 0x000f0000ull) << 32) |
         ((static_cast<uint64_t>(base) & 0x00ffffffull) << 16) |
         (static_cast<uint64_t>(limit) & 0x0000ffffull);
}

std::array<uint64_t, 5> BootGdt() {
  return {
      0,
      0,
      GdtEntry(0xa09b, 0,
               0xfffff),  // code: P, DPL0, S, exec/read/accessed; G, L
      GdtEntry(0xc093, 0,
               0xfffff),  // data: P, DPL0, S, read/write/accessed; G, DB
      GdtEntry(0x808b, 0, 0xfffff),  // TSS: P, busy 32/64-bit TSS; G
  };
}

std::vector<uint8_t> BuildIdentityPageTables() {
  constexpr uint64_t kPresent = 1, kWrite = 2, kLarge = 0x80;
  constexpr int kDirs = layout::kIdentityMappedBytes / kGiB;
  std::vector<uint64_t> t(512 * (2 + kDirs), 0);
  uint64_t* pml4 = &t[0];
  uint64_t* pdpt = &t[512];
  pml4[0] = layout::kPdpt.value | kPresent | kWrite;
  for (int d = 0; d < kDirs; ++d) {
    pdpt[d] =
        (layout::kPageDirectories.value + d * kPageSize) | kPresent | kWrite;
    uint64_t* pd = &t[512 * (2 + d)];
    for (int i = 0; i < 512; ++i) {
      pd[i] = (static_cast<uint64_t>(d) * kGiB + i * 2 * kMiB) | kPresent |
              kWrite | kLarge;
    }
  }
  std::vector<uint8_t> out(t.size() * 8);
  std::memcpy(out.data(), t.data(), out.size());
  return out;
}

namespace {

// A KVM segment from the descriptor we put in the GDT, so the hidden parts
// (what KVM_SET_SREGS loads) agree with the table the guest can read.
kvm_segment SegmentFromGdt(uint64_t desc, uint16_t selector) {
  kvm_segment s{};
  s.base = static_cast<uint32_t>(((desc >> 16) & 0xffffff) |
                                 ((desc >> 32) & 0xff000000));
  uint32_t limit =
      static_cast<uint32_t>((desc & 0xffff) | ((desc >> 32) & 0xf0000));
  s.g = (desc >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = selector;
  s.type = (desc >> 40) & 0xf;
  s.s = (desc >> 44) & 1;
  s.dpl = (desc >> 45) & 3;
  s.present = (desc >> 47) & 1;
  s.avl = (desc >> 52) & 1;
  s.l = (desc >> 53) & 1;
  s.db = (desc >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

}  // namespace

kvm_sregs LongModeSregs(kvm_sregs s) {
  const auto gdt = BootGdt();
  s.gdt.base = layout::kGdt.value;
  s.gdt.limit = static_cast<uint16_t>(sizeof(uint64_t) * gdt.size() - 1);
  s.idt.base = 0;
  s.idt.limit = 0;  // interrupts stay off until the kernel loads its IDT
  s.cs = SegmentFromGdt(gdt[kBootCs / 8], kBootCs);
  const kvm_segment data = SegmentFromGdt(gdt[kBootDs / 8], kBootDs);
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.tr = SegmentFromGdt(gdt[kBootTss / 8], kBootTss);
  s.cr3 = layout::kPml4.value;
  s.cr4 |= kCr4Pae;
  s.cr0 = (s.cr0 | kCr0Pe | kCr0Pg | kCr0Et) & ~(kCr0Cd | kCr0Nw);
  s.efer |= kEferLme | kEferLma;
  return s;
}

kvm_regs BootRegs(Gpa entry, Gpa boot_params) {
  kvm_regs r{};
  r.rip = entry.value;
  r.rsi = boot_params.value;
  r.rflags = 0x2;  // bit 1 is always set; IF clear
  return r;
}

kvm_fpu BootFpu() {
  kvm_fpu f{};
  f.fcw = 0x37f;     // FNINIT default
  f.mxcsr = 0x1f80;  // all SSE exceptions masked
  return f;
}

std::vector<Msr> BootMsrs() {
  return {
      {0x174, 0},       // IA32_SYSENTER_CS
      {0x175, 0},       // IA32_SYSENTER_ESP
      {0x176, 0},       // IA32_SYSENTER_EIP
      {0xc0000081, 0},  // STAR
      {0xc0000082, 0},  // LSTAR
      {0xc0000084, 0},  // SFMASK
      {0x10, 0},        // TSC
      // IA32_MTRR_DEF_TYPE: MTRRs enabled, default write-back, so the
      // kernel does not treat all of RAM as uncacheable.
      {0x2ff, (1u << 11) | 6},
  };
}

void SetLintVirtualWire(kvm_lapic_state& lapic) {
  auto reg = [&](int off) -> uint32_t* {
    return reinterpret_cast<uint32_t*>(lapic.regs + off);
  };
  constexpr uint32_t kDeliveryMask = 0x700;
  constexpr uint32_t kExtInt = 0x700, kNmi = 0x400;
  uint32_t v;
  std::memcpy(&v, reg(0x350), 4);  // LVT LINT0
  v = (v & ~kDeliveryMask) | kExtInt;
  std::memcpy(reg(0x350), &v, 4);
  std::memcpy(&v, reg(0x360), 4);  // LVT LINT1
  v = (v & ~kDeliveryMask) | kNmi;
  std::memcpy(reg(0x360), &v, 4);
}

std::vector<kvm_cpuid_entry2> FilterCpuid(std::vector<kvm_cpuid_entry2> entries,
                                          int index, int count) {
  const uint32_t id = static_cast<uint32_t>(index);
  for (kvm_cpuid_entry2& e : entries) {
    switch (e.function) {
      case 1:
        // EBX[31:24] initial APIC ID, [23:16] logical processors per package;
        // ECX bit 31: running under a hypervisor. EDX bit 28 (HTT) when >1.
        e.ebx = (e.ebx & 0x0000ffff) | (id << 24) |
                (static_cast<uint32_t>(count & 0xff) << 16);
        e.ecx |= 1u << 31;
        if (count > 1) e.edx |= 1u << 28;
        break;
      case 6:
        // Thermal and power management: nothing of it is emulated.
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0xb:
      case 0x1f:
        e.edx = id;  // x2APIC ID of this logical processor
        break;
      case 0x8000001f:
        // AMD memory encryption (SME/SEV): the host reports what it could
        // give an SEV guest, but this VM is not one. Left visible, the
        // decompressor reads MSR_AMD64_SEV and never gets to the kernel.
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case 0x40000000:
        // KVM's signature; KVM_GET_SUPPORTED_CPUID already reports it, but
        // make sure the guest sees "KVMKVMKVM\0\0\0" for kvmclock.
        e.ebx = 0x4b4d564b;  // "KVMK"
        e.ecx = 0x564b4d56;  // "VMKV"
        e.edx = 0x0000004d;  // "M"
        if (e.eax < 0x40000001) e.eax = 0x40000001;
        break;
      default:
        break;
    }
  }
  return entries;
}

}  // namespace devpass::vmm
