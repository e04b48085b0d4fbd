// The guest's ACPI tables read the way Linux reads them: the RSDP found by
// scanning 0xE0000-0xFFFFF, checksums and lengths of every table, the XSDT's
// pointers, the FADT's fields, the MADT per vCPU count (the DSDT's content:
// acpi_dsdt_test.cc); the PM1 registers; and the whole VM: tables in guest
// RAM, ACPI S5 powers off.

#include "vmm/acpi.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <span>

#include "aml_reader.h"
#include "fake_kvm.h"
#include "synthetic_bzimage.h"
#include "vm_host_dir.h"
#include "vmm/mptable.h"
#include "vmm/platform_devices.h"
#include "vmm/vm.h"

namespace devpass::vmm {
namespace {

using testing::AmlNode;

using testing::Le;

// The BIOS area 0xE0000-0xFFFFF with the tables in it, as guest memory.
class Area {
 public:
  explicit Area(const std::vector<uint8_t>& tables)
      : bytes_(layout::kHighMemory.value - layout::kAcpiTables.value, 0) {
    std::memcpy(bytes_.data(), tables.data(), tables.size());
  }
  // Linux's acpi_tb_scan_memory_for_rsdp: "RSD PTR " on a 16-byte
  // boundary, 20-byte checksum, and for revision 2+ the extended one.
  std::optional<uint64_t> ScanForRsdp() const {
    for (size_t off = 0; off + kRsdpSize <= bytes_.size(); off += 16) {
      const uint8_t* p = &bytes_[off];
      if (std::memcmp(p, "RSD PTR ", 8) != 0 || ByteSum(p, 20) != 0) continue;
      if (p[15] >= 2 && ByteSum(p, static_cast<size_t>(Le(p + 20, 4))) != 0)
        continue;
      return layout::kAcpiTables.value + off;
    }
    return std::nullopt;
  }
  const uint8_t* At(uint64_t gpa, uint64_t len) const {
    if (gpa < layout::kAcpiTables.value ||
        gpa + len > layout::kAcpiTables.value + bytes_.size()) {
      ADD_FAILURE() << "pointer " << std::hex << gpa
                    << " outside the ACPI area";
      return nullptr;
    }
    return &bytes_[gpa - layout::kAcpiTables.value];
  }
  // A table with a valid header and checksum, or nullptr (with a failure).
  const uint8_t* Table(uint64_t gpa, const char* sig) const {
    const uint8_t* h = At(gpa, kAcpiHeaderSize);
    if (!h) return nullptr;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(h), 4), sig);
    const uint64_t len = Le(h + 4, 4);
    const uint8_t* t = At(gpa, len);
    if (!t) return nullptr;
    EXPECT_EQ(ByteSum(t, len), 0) << sig << " checksum";
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t + 10), 6),
              kAcpiOemId);
    return t;
  }

 private:
  std::vector<uint8_t> bytes_;
};

struct Tables {
  std::vector<uint8_t> raw;
  uint64_t rsdp = 0, xsdt = 0, fadt = 0, madt = 0, dsdt = 0, facs = 0;
};

Tables Build(int cpus, uint64_t ram_end = 512 * kMiB) {
  Tables t;
  auto r = BuildAcpiTables({cpus, ram_end}, layout::kAcpiTables);
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return t;
  t.raw = *r;
  Area a(t.raw);
  t.rsdp = a.ScanForRsdp().value_or(0);
  if (!t.rsdp) return t;
  const uint8_t* rsdp = a.At(t.rsdp, kRsdpSize);
  t.xsdt = Le(rsdp + 24, 8);
  const uint8_t* xsdt = a.Table(t.xsdt, "XSDT");
  if (!xsdt) return t;
  for (uint64_t off = kAcpiHeaderSize; off < Le(xsdt + 4, 4); off += 8) {
    const uint64_t p = Le(xsdt + off, 8);
    const uint8_t* h = a.At(p, 4);
    if (h && std::memcmp(h, "FACP", 4) == 0) t.fadt = p;
    if (h && std::memcmp(h, "APIC", 4) == 0) t.madt = p;
  }
  if (const uint8_t* f = t.fadt ? a.Table(t.fadt, "FACP") : nullptr) {
    t.dsdt = Le(f + fadt::kXDsdt, 8);
    t.facs = Le(f + fadt::kXFirmwareCtrl, 8);
  }
  return t;
}

TEST(AcpiTables, RsdpFoundByALinuxLikeScan) {
  Tables t = Build(2);
  ASSERT_FALSE(t.raw.empty());
  EXPECT_LE(t.raw.size(), layout::kAcpiTablesMax);
  EXPECT_EQ(t.rsdp, layout::kAcpiTables.value);
  const uint8_t* r = t.raw.data();
  EXPECT_EQ(r[15], 2);           // revision
  EXPECT_EQ(Le(r + 16, 4), 0u);  // no RSDT
  EXPECT_EQ(Le(r + 20, 4), kRsdpSize);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(r + 9), 6), "DEVPAS");
}

TEST(AcpiTables, XsdtPointsAtFadtAndMadtAndEveryChecksumHolds) {
  Tables t = Build(2);
  Area a(t.raw);
  const uint8_t* x = a.Table(t.xsdt, "XSDT");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(Le(x + 4, 4), kAcpiHeaderSize + 2 * 8);  // two entries
  EXPECT_NE(t.fadt, 0u);
  EXPECT_NE(t.madt, 0u);
  EXPECT_NE(a.Table(t.madt, "APIC"), nullptr);
  EXPECT_NE(a.Table(t.dsdt, "DSDT"), nullptr);
  for (uint64_t p : {t.xsdt, t.fadt, t.madt, t.dsdt}) EXPECT_EQ(p % 16, 0u);
  const uint8_t* facs = a.At(t.facs, kFacsSize);
  ASSERT_NE(facs, nullptr);
  EXPECT_EQ(std::memcmp(facs, "FACS", 4), 0);
  EXPECT_EQ(Le(facs + 4, 4), kFacsSize);
  EXPECT_EQ(t.facs % 64, 0u);  // §5.2.10: 64-byte aligned
}

TEST(AcpiTables, FadtFixedHardwareSleepAndReset) {
  Tables t = Build(1);
  Area a(t.raw);
  const uint8_t* f = a.Table(t.fadt, "FACP");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(Le(f + 4, 4), kFadtSize);
  EXPECT_EQ(f[8], 6);                    // revision 6
  EXPECT_EQ(f[fadt::kMinorVersion], 5);  // ACPI 6.5
  const uint32_t flags = static_cast<uint32_t>(Le(f + fadt::kFlags, 4));
  EXPECT_EQ(flags & fadt::kHwReducedAcpi, 0u);
  EXPECT_NE(flags & fadt::kResetRegSup, 0u);
  EXPECT_NE(flags & fadt::kPwrButton, 0u);
  EXPECT_NE(flags & fadt::kSlpButton, 0u);
  EXPECT_NE(flags & fadt::kWbinvd, 0u);
  // DSDT and FACS through the 64-bit fields only.
  EXPECT_EQ(Le(f + fadt::kDsdt, 4), 0u);
  EXPECT_EQ(Le(f + fadt::kFirmwareCtrl, 4), 0u);
  EXPECT_NE(t.dsdt, 0u);
  // PM1a event and control blocks: the legacy fields and the GAS agree.
  EXPECT_EQ(Le(f + fadt::kSciInt, 2), 9u);
  EXPECT_EQ(Le(f + fadt::kSmiCmd, 4), 0u);
  EXPECT_EQ(Le(f + fadt::kPm1aEvtBlk, 4), layout::kAcpiPm1aEventPort);
  EXPECT_EQ(Le(f + fadt::kPm1aCntBlk, 4), layout::kAcpiPm1aControlPort);
  EXPECT_EQ(f[fadt::kPm1EvtLen], 4);
  EXPECT_EQ(f[fadt::kPm1CntLen], 2);
  EXPECT_EQ(Le(f + fadt::kPmTmrBlk, 4), 0u);  // no PM timer
  const uint8_t* evt = f + fadt::kXPm1aEvtBlk;
  EXPECT_EQ(evt[0], 1);   // system I/O
  EXPECT_EQ(evt[1], 32);  // bits
  EXPECT_EQ(Le(evt + 4, 8), layout::kAcpiPm1aEventPort);
  const uint8_t* cnt = f + fadt::kXPm1aCntBlk;
  EXPECT_EQ(cnt[0], 1);
  EXPECT_EQ(cnt[1], 16);
  EXPECT_EQ(Le(cnt + 4, 8), layout::kAcpiPm1aControlPort);
  // Not hardware-reduced: the extended sleep registers are unused.
  for (uint32_t off = fadt::kSleepControlReg; off < fadt::kSleepStatusReg + 12;
       ++off) {
    EXPECT_EQ(f[off], 0) << off;
  }
  // Reset: 0xFE to the i8042 command port, byte access.
  const uint8_t* rr = f + fadt::kResetReg;
  EXPECT_EQ(rr[0], 1);
  EXPECT_EQ(rr[1], 8);
  EXPECT_EQ(rr[3], 1);
  EXPECT_EQ(Le(rr + 4, 8), layout::kI8042CommandPort);
  EXPECT_EQ(f[fadt::kResetValue], 0xfe);
  const uint16_t boot = static_cast<uint16_t>(Le(f + fadt::kIapcBootArch, 2));
  EXPECT_EQ(boot & fadt::k8042, 0);  // the i8042 stub is only a reset line
  EXPECT_NE(boot & fadt::kVgaNotPresent, 0);
  EXPECT_EQ(boot & fadt::kMsiNotSupported, 0);  // passthrough needs MSI
  EXPECT_EQ(boot & fadt::kCmosRtcNotPresent, 0);
  EXPECT_EQ(f[fadt::kCentury], 0);  // the RTC has no century register
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(f + fadt::kHypervisorVendor)),
      "DEVPASS");
}

struct Madt {
  std::vector<std::pair<int, int>> lapics;  // (UID, APIC ID), enabled only
  int ioapic_id = -1;
  uint64_t ioapic_addr = 0, gsi_base = 99;
  std::map<int, std::pair<uint32_t, uint16_t>>
      overrides;                          // IRQ -> (GSI, flags)
  std::vector<std::pair<int, int>> nmis;  // (UID, LINT)
  uint32_t flags = 0, lapic_addr = 0;
};

Madt ParseMadt(int cpus) {
  Tables t = Build(cpus);
  Area a(t.raw);
  Madt m;
  const uint8_t* p = a.Table(t.madt, "APIC");
  if (!p) return m;
  EXPECT_EQ(p[8], 5);  // revision
  m.lapic_addr = static_cast<uint32_t>(Le(p + 36, 4));
  m.flags = static_cast<uint32_t>(Le(p + 40, 4));
  const uint64_t len = Le(p + 4, 4);
  uint64_t off = 44;
  while (off < len) {
    const uint8_t* e = p + off;
    EXPECT_GE(e[1], 2);
    if (e[1] < 2) break;
    switch (e[0]) {
      case kMadtLocalApic:
        EXPECT_EQ(e[1], 8);
        if (Le(e + 4, 4) & 1) m.lapics.push_back({e[2], e[3]});
        break;
      case kMadtIoApic:
        EXPECT_EQ(e[1], 12);
        m.ioapic_id = e[2];
        m.ioapic_addr = Le(e + 4, 4);
        m.gsi_base = Le(e + 8, 4);
        break;
      case kMadtInterruptOverride:
        EXPECT_EQ(e[1], 10);
        EXPECT_EQ(e[2], 0);  // ISA
        m.overrides[e[3]] = {static_cast<uint32_t>(Le(e + 4, 4)),
                             static_cast<uint16_t>(Le(e + 8, 2))};
        break;
      case kMadtLocalApicNmi:
        EXPECT_EQ(e[1], 6);
        m.nmis.push_back({e[2], e[5]});
        break;
      default:
        ADD_FAILURE() << "unexpected MADT entry type " << int{e[0]};
    }
    off += e[1];
  }
  EXPECT_EQ(off, len);  // entries fill the table exactly
  return m;
}

TEST(AcpiTables, MadtOneLocalApicPerVcpu) {
  for (int cpus : {1, 2, 5, kMaxVcpus}) {
    Madt m = ParseMadt(cpus);
    ASSERT_EQ(static_cast<int>(m.lapics.size()), cpus);
    for (int i = 0; i < cpus; ++i) {
      EXPECT_EQ(m.lapics[i],
                (std::pair<int, int>{i, i}));  // APIC ID = vCPU index
    }
    EXPECT_EQ(m.ioapic_id, cpus);  // as in the MP table
    EXPECT_EQ(m.ioapic_addr, layout::kIoApic.value);
    EXPECT_EQ(m.gsi_base, 0u);
    EXPECT_EQ(m.lapic_addr, layout::kLocalApic.value);
    EXPECT_EQ(m.flags, kMadtPcatCompat);
  }
}

TEST(AcpiTables, MadtOverridesMatchKvmRouting) {
  Madt m = ParseMadt(2);
  // IRQ 0 stays on pin 0 (KVM's PIT raises GSI 0; a PC would say pin 2),
  // the SCI is level-triggered; nothing else is overridden (identity,
  // edge, active high: what the MP table says).
  ASSERT_EQ(m.overrides.size(), 2u);
  EXPECT_EQ(m.overrides[0], (std::pair<uint32_t, uint16_t>{0, kIsoConforming}));
  EXPECT_EQ(m.overrides[9],
            (std::pair<uint32_t, uint16_t>{9, kIsoLevelActiveHigh}));
  ASSERT_EQ(m.nmis.size(), 1u);
  EXPECT_EQ(m.nmis[0], (std::pair<int, int>{0xff, 1}));  // every CPU, LINT1
}

TEST(AcpiTables, RefusesVcpuCountsTheMpTableRefuses) {
  EXPECT_FALSE(BuildAcpiTables({0, 512 * kMiB}, layout::kAcpiTables));
  auto r = BuildAcpiTables({kMaxVcpus + 1, 512 * kMiB}, layout::kAcpiTables);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("1 to 32 vCPUs"), std::string::npos);
}

// ---- PM1 registers.
struct PmBlock {
  int power_offs = 0;
  AcpiPmBlock dev{kAcpiS5SleepType, [this] { ++power_offs; }};
  uint64_t Read(uint64_t off, size_t width) {
    uint8_t d[4] = {};
    dev.Read(off, std::span(d, width));
    return Le(d, static_cast<int>(width));
  }
  void Write(uint64_t off, uint64_t v, size_t width) {
    uint8_t d[4];
    for (size_t i = 0; i < width; ++i)
      d[i] = static_cast<uint8_t>(v >> (8 * i));
    dev.Write(off, std::span<const uint8_t>(d, width));
  }
};

TEST(AcpiPmBlock, StatusEnableAndSciEn) {
  PmBlock pm;
  EXPECT_EQ(pm.Read(0, 2), 0u);  // PM1_STS: nothing pending
  pm.Write(0, 0xffff, 2);        // write-1-to-clear: still nothing
  EXPECT_EQ(pm.Read(0, 2), 0u);
  pm.Write(2, 0x0421, 2);  // PM1_EN: GBL_EN, PWRBTN_EN... stick
  EXPECT_EQ(pm.Read(2, 2), 0x0421u);
  EXPECT_EQ(pm.Read(4, 2) & kPm1SciEn, kPm1SciEn);  // always in ACPI mode
  EXPECT_EQ(pm.Read(0, 4), 0x04210000u);  // a dword read spans STS and EN
  EXPECT_EQ(pm.power_offs, 0);
}

TEST(AcpiPmBlock, SlpEnWithS5PowersOffLikeLinux) {
  PmBlock pm;
  const uint16_t typ =
      static_cast<uint16_t>(kAcpiS5SleepType << kPm1SlpTypShift);
  // acpi_hw_legacy_sleep: write #1 SLP_TYP alone, write #2 with SLP_EN.
  pm.Write(4, typ | kPm1SciEn, 2);
  EXPECT_EQ(pm.power_offs, 0);
  EXPECT_EQ(pm.Read(4, 2), static_cast<uint64_t>(typ | kPm1SciEn));
  pm.Write(4, typ | kPm1SlpEn | kPm1SciEn, 2);
  EXPECT_EQ(pm.power_offs, 1);
  EXPECT_EQ(pm.Read(4, 2) & kPm1SlpEn, 0u);  // write-only
}

TEST(AcpiPmBlock, OtherSleepTypesAndByteAccess) {
  PmBlock pm;
  pm.Write(4, (3 << kPm1SlpTypShift) | kPm1SlpEn, 2);  // "S3": not advertised
  EXPECT_EQ(pm.power_offs, 0);
  // SLP_TYP and SLP_EN both live in PM1_CNT's high byte (port 0x605).
  pm.Write(5, ((kAcpiS5SleepType << kPm1SlpTypShift) | kPm1SlpEn) >> 8, 1);
  EXPECT_EQ(pm.power_offs, 1);
}

// ---- the whole VM.
class AcpiVmTest : public ::testing::Test {
 protected:
  testing::VmHostDir host{"devpass-acpi-test"};
  std::filesystem::path dir = host.path();
  VmConfig config = host.Config();
  testing::FakeKvm kvm;
};

TEST_F(AcpiVmTest, TablesInGuestRamWhereLinuxScans) {
  config.cpus = 2;
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm) << vm.error().message;
  const uint8_t* ram = (*vm)->memory().host_base();
  std::vector<uint8_t> area(ram + layout::kAcpiTables.value,
                            ram + layout::kHighMemory.value);
  auto want = BuildAcpiTables({2, 128 * kMiB}, layout::kAcpiTables);
  ASSERT_TRUE(want);
  EXPECT_TRUE(std::equal(want->begin(), want->end(), area.begin()));
  EXPECT_EQ(Area(area).ScanForRsdp(), layout::kAcpiTables.value);
}

TEST_F(AcpiVmTest, AcpiS5IsAPowerOff) {
  // Linux's second PM1_CNT write, seen as its high byte at 0x605.
  kvm.script = {testing::IoOut(
      layout::kAcpiPm1aControlPort + 1,
      static_cast<uint8_t>(
          ((kAcpiS5SleepType << kPm1SlpTypShift) | kPm1SlpEn) >> 8))};
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm) << vm.error().message;
  ASSERT_TRUE((*vm)->Start());
  VmStop stop = (*vm)->Wait();
  EXPECT_EQ(stop.reason, StopReason::kPowerOff);
  EXPECT_EQ(stop.detail, "the guest powered off (ACPI S5)");
}

}  // namespace
}  // namespace devpass::vmm
