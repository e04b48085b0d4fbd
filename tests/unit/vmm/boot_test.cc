// The boot path without KVM: bzImage parsing, boot_params and e820, initrd
// placement, loading into guest RAM, page tables, GDT, long-mode registers,
// CPUID filtering, the MP table and the host memory check.

#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "synthetic_bzimage.h"
#include "vmm/bzimage.h"
#include "vmm/guest_memory.h"
#include "vmm/linux_loader.h"
#include "vmm/mptable.h"
#include "vmm/x86_boot.h"

namespace devpass::vmm {
namespace {

using testing::BzImageSpec;
using testing::MakeBzImage;

TEST(BzImage, ParsesTheSetupHeader) {
  auto f = MakeBzImage();
  auto img = ParseBzImage(f, "k");
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->version, 0x020f);
  EXPECT_EQ(img->VersionString(), "2.15");
  EXPECT_EQ(img->setup_sects, 4);
  EXPECT_EQ(img->kernel_offset, 5u * 512);
  EXPECT_EQ(img->kernel_size, 8192u);
  EXPECT_EQ(img->header_end, 0x26cu);
  EXPECT_EQ(img->cmdline_size, 2047u);
  EXPECT_EQ(img->pref_address, 0x1000000u);
  EXPECT_EQ(img->init_size, 0x400000u);
  EXPECT_TRUE(img->relocatable);
}

TEST(BzImage, ZeroSetupSectsMeansFour) {
  BzImageSpec s;
  s.setup_sects = 0;
  auto f = MakeBzImage(s);
  auto img = ParseBzImage(f, "k");
  ASSERT_TRUE(img);
  EXPECT_EQ(img->setup_sects, 4);
  EXPECT_EQ(img->kernel_offset, 5u * 512);
}

std::string ParseError(std::vector<uint8_t> f) {
  auto img = ParseBzImage(f, "/boot/x");
  return img ? "" : img.error().message;
}

TEST(BzImage, SaysWhatANonBzImageIs) {
  std::vector<uint8_t> elf(4096, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  EXPECT_NE(ParseError(elf).find("an ELF file (an uncompressed vmlinux?)"),
            std::string::npos);
  std::vector<uint8_t> gz(4096, 0);
  gz[0] = 0x1f;
  gz[1] = 0x8b;
  EXPECT_NE(ParseError(gz).find(
                "/boot/x is not a Linux bzImage: no 0xAA55 boot flag"),
            std::string::npos);
  EXPECT_NE(ParseError(gz).find("gzip"), std::string::npos);
  EXPECT_NE(ParseError(std::vector<uint8_t>(10, 0)).find("10 bytes, too small"),
            std::string::npos);
  BzImageSpec s;
  s.hdrs = false;
  EXPECT_NE(ParseError(MakeBzImage(s)).find("no \"HdrS\""), std::string::npos);
}

TEST(BzImage, RefusesOldProtocolsAnd32BitKernels) {
  BzImageSpec old;
  old.version = 0x0206;
  EXPECT_NE(ParseError(MakeBzImage(old))
                .find("boot protocol 2.06; devpass needs 2.12"),
            std::string::npos);
  BzImageSpec k32;
  k32.xloadflags = 0;
  EXPECT_NE(ParseError(MakeBzImage(k32)).find("XLF_KERNEL_64"),
            std::string::npos);
  BzImageSpec zimage;
  zimage.loadflags = 0;
  EXPECT_NE(ParseError(MakeBzImage(zimage)).find("LOADED_HIGH"),
            std::string::npos);
  BzImageSpec truncated;
  truncated.kernel_bytes = 0;
  EXPECT_NE(ParseError(MakeBzImage(truncated)).find("truncated"),
            std::string::npos);
}

TEST(E820, RamReservedAndHoles) {
  auto e = BuildE820(PlanRam(512 * kMiB));
  std::vector<E820Entry> want = {
      {0, 0x9f000, kE820Ram},
      {0x9f000, 0x1000, kE820Reserved},   // MP tables
      {0xe0000, 0x20000, kE820Reserved},  // ACPI tables
      {0x100000, 512 * kMiB - 0x100000, kE820Ram},
      {0xfec00000, 0x1000, kE820Reserved},
      {0xfee00000, 0x1000, kE820Reserved},
      {0xfffbc000, 0x4000, kE820Reserved},
  };
  EXPECT_EQ(e, want);
}

TEST(E820, RamAboveTheHoleGoesAbove4GiB) {
  auto ram = PlanRam(4 * kGiB);
  ASSERT_EQ(ram.size(), 2u);
  EXPECT_EQ(ram[0].end(), layout::kPciHole);
  EXPECT_EQ(ram[1].start, layout::k4GiB);
  EXPECT_EQ(ram[1].size, 1 * kGiB);
  EXPECT_EQ(ram[1].host_offset, 3 * kGiB);
  auto e = BuildE820(ram);
  EXPECT_EQ(e[3], (E820Entry{0x100000, 3 * kGiB - 0x100000, kE820Ram}));
  EXPECT_EQ(e.back(), (E820Entry{4 * kGiB, kGiB, kE820Ram}));
}

TEST(Initrd, HighestPageAlignedAddressBelowBothLimits) {
  auto f = MakeBzImage();
  auto img = *ParseBzImage(f, "k");
  auto p = PlaceInitrd(img, Gpa(512 * kMiB), 10000);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->addr.value, (512 * kMiB - 10000) & ~0xfffull);
  img.initrd_addr_max = 0x0fffffff;  // 256 MiB
  p = PlaceInitrd(img, Gpa(512 * kMiB), 10000);
  EXPECT_EQ(p->addr.value, (256 * kMiB - 10000) & ~0xfffull);
  auto too_big = PlaceInitrd(img, Gpa(512 * kMiB), 250 * kMiB);
  ASSERT_FALSE(too_big);
  EXPECT_NE(too_big.error().message.find("give a larger --mem"),
            std::string::npos);
}

TEST(BootParams, HeaderCopyAndLoaderFields) {
  auto f = MakeBzImage();
  auto img = *ParseBzImage(f, "k");
  auto e820 = BuildE820(PlanRam(256 * kMiB));
  boot_params bp = BuildBootParams(img, f, {Gpa(0x8000000), 4096}, e820);
  EXPECT_EQ(bp.hdr.boot_flag, 0xaa55);
  EXPECT_EQ(bp.hdr.header, 0x53726448u);
  EXPECT_EQ(bp.hdr.version, 0x020f);
  EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
  EXPECT_EQ(bp.hdr.cmd_line_ptr, layout::kCmdline.value);
  EXPECT_EQ(bp.hdr.ramdisk_image, 0x8000000u);
  EXPECT_EQ(bp.hdr.ramdisk_size, 4096u);
  EXPECT_EQ(bp.hdr.init_size, 0x400000u);
  ASSERT_EQ(bp.e820_entries, e820.size());
  EXPECT_EQ(bp.e820_table[3].addr, 0x100000u);
  EXPECT_EQ(bp.e820_table[3].type, kE820Ram);
  EXPECT_EQ(sizeof(bp), 4096u);
}

TEST(LoadLinux, KernelCmdlineInitrdAndZeroPageInGuestRam) {
  auto mem = GuestMemory::Create(128 * kMiB, Backing::kSmallPages);
  ASSERT_TRUE(mem) << mem.error().message;
  auto f = MakeBzImage();
  std::vector<uint8_t> initrd(5000, 0x5a);
  auto entry = LoadLinux(*mem, f, "k", initrd, "console=ttyS0 quiet");
  ASSERT_TRUE(entry) << entry.error().message;
  EXPECT_EQ(entry->entry.value, 0x100200u);
  EXPECT_EQ(entry->boot_params, layout::kBootParams);
  uint8_t* base = mem->host_base();
  EXPECT_EQ(std::memcmp(base + 0x100000, f.data() + 5 * 512, 8192), 0);
  EXPECT_STREQ(reinterpret_cast<char*>(base + layout::kCmdline.value),
               "console=ttyS0 quiet");
  boot_params bp;
  std::memcpy(&bp, base + layout::kBootParams.value, sizeof(bp));
  EXPECT_EQ(bp.hdr.ramdisk_size, 5000u);
  EXPECT_EQ(bp.hdr.ramdisk_image % 4096, 0u);
  EXPECT_EQ(base[bp.hdr.ramdisk_image], 0x5a);
  EXPECT_LE(bp.hdr.ramdisk_image + 5000u, 128 * kMiB);
}

TEST(LoadLinux, CommandLineLongerThanTheKernelTakesIsRefused) {
  auto mem = GuestMemory::Create(64 * kMiB, Backing::kSmallPages);
  ASSERT_TRUE(mem);
  BzImageSpec s;
  s.cmdline_size = 10;
  auto r = LoadLinux(*mem, MakeBzImage(s), "k", {}, "0123456789");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("accepts at most 10"), std::string::npos);
}

TEST(PageTables, IdentityMapOfFourGiBWithTwoMiBPages) {
  auto t = BuildIdentityPageTables();
  ASSERT_EQ(t.size(), 6 * 4096u);
  auto q = [&](size_t i) {
    uint64_t v;
    std::memcpy(&v, &t[i * 8], 8);
    return v;
  };
  EXPECT_EQ(q(0), layout::kPdpt.value | 3);
  EXPECT_EQ(q(1), 0u);
  for (int d = 0; d < 4; ++d)
    EXPECT_EQ(q(512 + d), (0xb000u + d * 0x1000u) | 3);
  EXPECT_EQ(q(1024), 0x83u);                                       // 0 -> 0
  EXPECT_EQ(q(1025), 0x200000u | 0x83);                            // 2 MiB
  EXPECT_EQ(q(1024 + 4 * 512 - 1), (4 * kGiB - 2 * kMiB) | 0x83);  // last 2 MiB
}

TEST(Gdt, FlatCodeAndDataAtTheBootSelectors) {
  auto gdt = BootGdt();
  EXPECT_EQ(gdt[0], 0u);
  EXPECT_EQ(gdt[kBootCs / 8], 0x00af9b000000ffffull);  // 64-bit code
  EXPECT_EQ(gdt[kBootDs / 8], 0x00cf93000000ffffull);  // flat data
  EXPECT_EQ(gdt[kBootTss / 8], 0x008f8b000000ffffull);
}

TEST(LongMode, SregsRegsAndFpu) {
  kvm_sregs in{};
  in.cr0 = 0x60000010;  // reset value: CD NW ET
  in.apic_base = 0xfee00900;
  kvm_sregs s = LongModeSregs(in);
  EXPECT_EQ(s.cr0, kCr0Pe | kCr0Et | kCr0Pg);
  EXPECT_EQ(s.cr3, layout::kPml4.value);
  EXPECT_TRUE(s.cr4 & kCr4Pae);
  EXPECT_EQ(s.efer, kEferLme | kEferLma);
  EXPECT_EQ(s.apic_base, 0xfee00900u);  // kept
  EXPECT_EQ(s.cs.selector, kBootCs);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.cs.db, 0);
  EXPECT_EQ(s.cs.type, 11);
  EXPECT_EQ(s.cs.limit, 0xffffffffu);
  EXPECT_EQ(s.ds.selector, kBootDs);
  EXPECT_EQ(s.ss.type, 3);
  EXPECT_EQ(s.ss.db, 1);
  EXPECT_EQ(s.tr.selector, kBootTss);
  EXPECT_EQ(s.tr.s, 0);
  EXPECT_EQ(s.gdt.base, layout::kGdt.value);
  EXPECT_EQ(s.gdt.limit, 5 * 8 - 1);
  kvm_regs r = BootRegs(Gpa(0x100200), Gpa(0x7000));
  EXPECT_EQ(r.rip, 0x100200u);
  EXPECT_EQ(r.rsi, 0x7000u);
  EXPECT_EQ(r.rflags, 2u);
  EXPECT_EQ(BootFpu().fcw, 0x37f);
}

TEST(Lapic, Lint0ExtIntLint1Nmi) {
  kvm_lapic_state l{};
  uint32_t masked = 0x10000 | 0x700;
  std::memcpy(l.regs + 0x350, &masked, 4);
  SetLintVirtualWire(l);
  uint32_t v0, v1;
  std::memcpy(&v0, l.regs + 0x350, 4);
  std::memcpy(&v1, l.regs + 0x360, 4);
  EXPECT_EQ(v0, 0x10700u);
  EXPECT_EQ(v1 & 0x700, 0x400u);
}

TEST(Cpuid, ApicIdsHypervisorBitAndKvmSignature) {
  std::vector<kvm_cpuid_entry2> in(5);
  in[4].function = 0x8000001f;
  in[4].eax = 0x1b;  // SME, SEV, ...
  in[0].function = 1;
  in[0].ebx = 0xff00abcd;
  in[1].function = 0xb;
  in[2].function = 0x40000000;
  in[3].function = 6;
  in[3].eax = 7;
  auto out = FilterCpuid(in, 3, 4);
  EXPECT_EQ(out[0].ebx, 0x0304abcdu);
  EXPECT_TRUE(out[0].ecx & (1u << 31));
  EXPECT_TRUE(out[0].edx & (1u << 28));
  EXPECT_EQ(out[1].edx, 3u);
  char sig[13] = {};
  std::memcpy(sig, &out[2].ebx, 4);
  std::memcpy(sig + 4, &out[2].ecx, 4);
  std::memcpy(sig + 8, &out[2].edx, 4);
  EXPECT_STREQ(sig, "KVMKVMKVM");
  EXPECT_EQ(out[3].eax, 0u);
  EXPECT_EQ(out[4].eax, 0u);  // no SEV
}

// The floating pointer where Linux looks, pointing back at the table.
TEST(MpTable, FloatingPointerInTheLastKiBOfBaseMemory) {
  auto t = BuildMpTable(2, layout::kMpTable);
  ASSERT_TRUE(t);
  const std::vector<uint8_t>& b = *t;
  ASSERT_EQ(b.size(), kMpFloatingOffset + 16);
  EXPECT_EQ(layout::kMpTable.value + kMpFloatingOffset, 0x9fc00u);  // 639 KiB
  EXPECT_LE(layout::kMpTable.value + b.size(), layout::kBaseMemoryEnd.value);
  const uint8_t* f = b.data() + kMpFloatingOffset;
  EXPECT_EQ(std::memcmp(f, "_MP_", 4), 0);
  EXPECT_EQ(ByteSum(f, 16), 0);
  uint32_t phys;
  std::memcpy(&phys, f + 4, 4);
  EXPECT_EQ(phys, layout::kMpTable.value);
  EXPECT_EQ(f[8], 1);   // length in paragraphs
  EXPECT_EQ(f[9], 4);   // revision 1.4
  EXPECT_EQ(f[11], 0);  // feature byte 1: a configuration table follows
}

TEST(MpTable, ChecksumsEntriesAndLayout) {
  auto t = BuildMpTable(2, layout::kMpTable);
  ASSERT_TRUE(t);
  const std::vector<uint8_t>& b = *t;
  const uint8_t* c = b.data();
  EXPECT_EQ(std::memcmp(c, "PCMP", 4), 0);
  uint16_t len = c[4] | (c[5] << 8);
  EXPECT_EQ(len, 44 + 2 * 20 + 2 * 8 + 8 + (16 + 124 + 2) * 8);
  EXPECT_LE(len, kMpFloatingOffset);
  EXPECT_EQ(ByteSum(c, len), 0);
  for (size_t i = len; i < kMpFloatingOffset; ++i) ASSERT_EQ(b[i], 0) << i;
  uint16_t count = c[34] | (c[35] << 8);
  EXPECT_EQ(count, 2 + 2 + 1 + 16 + 124 + 2);
  uint32_t lapic;
  std::memcpy(&lapic, c + 36, 4);
  EXPECT_EQ(lapic, layout::kLocalApic.value);
  // Entries: processors (BSP flagged), buses, IOAPIC, interrupts.
  const uint8_t* e = c + 44;
  EXPECT_EQ(e[0], kMpProcessor);
  EXPECT_EQ(e[1], 0);
  EXPECT_EQ(e[3], 0x03);
  EXPECT_EQ(e[20], kMpProcessor);
  EXPECT_EQ(e[21], 1);
  EXPECT_EQ(e[23], 0x01);
  e += 40;
  EXPECT_EQ(e[0], kMpBus);
  EXPECT_EQ(e[1], 0);
  EXPECT_EQ(std::memcmp(e + 2, "PCI   ", 6), 0);
  EXPECT_EQ(e[9], 1);
  EXPECT_EQ(std::memcmp(e + 10, "ISA   ", 6), 0);
  e += 16;
  EXPECT_EQ(e[0], kMpIoApic);
  EXPECT_EQ(e[1], 2);  // IOAPIC ID after the CPUs
  uint32_t ioapic;
  std::memcpy(&ioapic, e + 4, 4);
  EXPECT_EQ(ioapic, layout::kIoApic.value);
  e += 8;
  for (int irq = 0; irq < 16; ++irq, e += 8) {
    EXPECT_EQ(e[0], kMpIoInterrupt);
    EXPECT_EQ(e[2] | (e[3] << 8), 0);  // conforms to ISA: edge, active high
    EXPECT_EQ(e[4], 1);                // ISA bus
    EXPECT_EQ(e[5], irq);              // source IRQ
    EXPECT_EQ(e[6], 2);                // IOAPIC ID
    EXPECT_EQ(e[7], irq);              // INTIN
  }
  e += 124 * 8;  // PCI INTx, checked below
  EXPECT_EQ(e[0], kMpLocalInterrupt);
  EXPECT_EQ(e[1], 3);   // ExtINT
  EXPECT_EQ(e[7], 0);   // LINT0
  EXPECT_EQ(e[9], 1);   // NMI
  EXPECT_EQ(e[15], 1);  // LINT1
}

// One entry per slot and pin of bus 0, as Linux's mpparse/IO_APIC_get_PCI_
// irq_vector reads them: srcbus is the PCI bus, srcbusirq = slot << 2 |
// pin - 1, the IOAPIC input is the board's swizzle.
TEST(MpTable, PciIntxEntriesForEverySlotAndPin) {
  const int cpus = 3;
  auto t = BuildMpTable(cpus, layout::kMpTable);
  ASSERT_TRUE(t);
  const uint8_t* e = t->data() + 44 + cpus * 20 + 2 * 8 + 8 + 16 * 8;
  std::map<std::pair<int, int>, int> seen;  // (slot, pin) -> IOAPIC input
  for (int i = 0; i < 124; ++i, e += 8) {
    ASSERT_EQ(e[0], kMpIoInterrupt);
    EXPECT_EQ(e[1], 0);                   // INT
    EXPECT_EQ(e[2] | (e[3] << 8), 0x0f);  // level, active low
    EXPECT_EQ(e[4], 0);                   // the PCI bus entry's ID
    const int slot = e[5] >> 2, pin = (e[5] & 3) + 1;
    EXPECT_EQ(e[6], cpus);  // IOAPIC ID
    EXPECT_EQ(e[7], layout::PciIntxGsi(slot, pin).value);
    EXPECT_GE(e[7], 16);
    EXPECT_LT(e[7], 24);
    EXPECT_TRUE(seen.emplace(std::pair{slot, pin}, e[7]).second)
        << slot << "/" << pin;
  }
  EXPECT_EQ(seen.size(), 124u);
  EXPECT_EQ(seen.count({0, 1}), 0u);  // the host bridge has no INTx
  EXPECT_EQ(seen.at({1, 1}), 17);     // swizzle: (slot + pin - 1) % 8 + 16
  EXPECT_EQ(seen.at({3, 4}), 22);
  EXPECT_EQ(seen.at({31, 4}), 18);
  EXPECT_EQ(seen.at({2, 1}), 18);  // neighbours' INTA# differ
}

TEST(MpTable, FitsForTheMostCpusAndRefusesMore) {
  auto t = BuildMpTable(kMaxVcpus, layout::kMpTable);
  ASSERT_TRUE(t);
  EXPECT_LE(t->size(), layout::kMpTableMax);
  const uint8_t* c = t->data();
  const uint16_t len = c[4] | (c[5] << 8);
  EXPECT_LE(len, kMpFloatingOffset);
  EXPECT_EQ(ByteSum(c, len), 0);
  EXPECT_EQ(ByteSum(t->data() + kMpFloatingOffset, 16), 0);
  EXPECT_FALSE(BuildMpTable(kMaxVcpus + 1, layout::kMpTable));
  EXPECT_FALSE(BuildMpTable(0, layout::kMpTable));
}

TEST(HostMemory, RefusesMoreThanAvailableWithNumbers) {
  MemInfo info{.available = 1000 * kMiB};
  auto st = CheckHostMemory(info, 2048 * kMiB, Backing::kSmallPages);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find(
                "needs 2048 MiB of RAM but the host has only 1000 MiB"),
            std::string::npos);
  EXPECT_TRUE(CheckHostMemory(info, 512 * kMiB, Backing::kSmallPages));
  MemInfo huge{
      .available = 8 * kGiB, .hugepages_free = 10, .hugepage_size = 2 * kMiB};
  auto h = CheckHostMemory(huge, 512 * kMiB, Backing::kHugetlb);
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message.find("only 10 free huge pages (20 MiB)"),
            std::string::npos);
  EXPECT_NE(h.error().message.find("echo 256 > /proc/sys/vm/nr_hugepages"),
            std::string::npos);
}

TEST(GuestMemory, HostRangeStaysInsideRam) {
  auto mem = GuestMemory::Create(64 * kMiB, Backing::kSmallPages);
  ASSERT_TRUE(mem);
  EXPECT_TRUE(mem->HostRange(Gpa(64 * kMiB - 4096), 4096));
  EXPECT_FALSE(mem->HostRange(Gpa(64 * kMiB - 4096), 4097));
  EXPECT_FALSE(mem->HostRange(layout::kPciHole, 1));
  EXPECT_FALSE(GuestMemory::Create(16 * kMiB, Backing::kSmallPages));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(mem->host_base()) % (2 * kMiB), 0u);
  mem->host_base()[64 * kMiB - 1] = 1;  // the whole range is mapped
}

}  // namespace
}  // namespace devpass::vmm
