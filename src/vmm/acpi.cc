#include "vmm/acpi.h"

#include <fmt/format.h>

#include <cstring>
#include <string_view>

#include "pci/pci_bus.h"
#include "vmm/mptable.h"

namespace devpass::vmm {
namespace {

using aml::Bytes;

constexpr uint32_t kOemRevision = 1;
constexpr char kCreatorId[] = "DVPS";
constexpr uint32_t kCreatorRevision = 1;

// Generic Address Structure (§5.2.3.2).
constexpr uint8_t kGasSystemIo = 1;
constexpr uint8_t kGasAccessByte = 1;

void Put(Bytes& t, size_t off, uint64_t v, int width) {
  for (int i = 0; i < width; ++i)
    t[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutStr(Bytes& t, size_t off, std::string_view s, size_t n) {
  for (size_t i = 0; i < n; ++i)
    t[off + i] = i < s.size() ? static_cast<uint8_t>(s[i]) : ' ';
}
void PutGas(Bytes& t, size_t off, uint8_t space, uint8_t bit_width,
            uint8_t access, uint64_t address) {
  t[off] = space;
  t[off + 1] = bit_width;
  t[off + 2] = 0;  // bit offset
  t[off + 3] = access;
  Put(t, off + 4, address, 8);
}

// A table of `length` zero bytes with the common header (§5.2.6) filled in
// except the checksum, which Seal() sets once the body is final.
Bytes Table(std::string_view signature, uint32_t length, uint8_t revision) {
  Bytes t(length, 0);
  PutStr(t, 0, signature, 4);
  Put(t, 4, length, 4);
  t[8] = revision;
  PutStr(t, 10, kAcpiOemId, 6);
  PutStr(t, 16, kAcpiOemTableId, 8);
  Put(t, 24, kOemRevision, 4);
  PutStr(t, 28, kCreatorId, 4);
  Put(t, 32, kCreatorRevision, 4);
  return t;
}

void Seal(Bytes& t) {
  Put(t, 4, t.size(), 4);
  t[9] = 0;
  t[9] = static_cast<uint8_t>(-ByteSum(t.data(), t.size()));
}

Bytes Dsdt(const AcpiConfig& config) {
  const Bytes body = BuildDsdtAml(config);
  Bytes t = Table("DSDT", kAcpiHeaderSize, 2);  // revision 2: 64-bit integers
  t.insert(t.end(), body.begin(), body.end());
  Seal(t);
  return t;
}

Bytes Facs() {
  // No checksum; version 2 (ACPI 6.5 table 5.14). No waking vector: devpass
  // advertises no sleep state the guest would wake from.
  Bytes t(kFacsSize, 0);
  PutStr(t, 0, "FACS", 4);
  Put(t, 4, kFacsSize, 4);
  t[32] = 2;
  return t;
}

Bytes Madt(int cpus) {
  Bytes t = Table("APIC", kAcpiHeaderSize + 8, 5);
  Put(t, 36, layout::kLocalApic.value, 4);
  Put(t, 40, kMadtPcatCompat, 4);
  auto add = [&t](std::initializer_list<uint8_t> e) { t.insert(t.end(), e); };
  auto le32 = [](uint32_t v, int i) {
    return static_cast<uint8_t>(v >> (8 * i));
  };
  for (int i = 0; i < cpus; ++i) {
    const auto id = static_cast<uint8_t>(i);
    add({kMadtLocalApic, 8, id, id, 1, 0, 0,
         0});  // UID, APIC ID, flags: enabled
  }
  const auto ioapic = static_cast<uint32_t>(layout::kIoApic.value);
  add({kMadtIoApic, 12, static_cast<uint8_t>(cpus), 0, le32(ioapic, 0),
       le32(ioapic, 1), le32(ioapic, 2), le32(ioapic, 3), 0, 0, 0,
       0});  // GSI base 0
  auto iso = [&](uint8_t irq, uint32_t gsi, uint16_t flags) {
    add({kMadtInterruptOverride, 10, 0 /* ISA */, irq, le32(gsi, 0),
         le32(gsi, 1), le32(gsi, 2), le32(gsi, 3), static_cast<uint8_t>(flags),
         static_cast<uint8_t>(flags >> 8)});
  };
  iso(0, 0, kIsoConforming);
  iso(static_cast<uint8_t>(layout::kAcpiSciGsi.value),
      layout::kAcpiSciGsi.value, kIsoLevelActiveHigh);
  add({kMadtLocalApicNmi, 6, 0xff /* every processor */, 0, 0, 1 /* LINT1 */});
  Seal(t);
  return t;
}

Bytes Fadt(uint64_t facs, uint64_t dsdt) {
  namespace f = fadt;
  Bytes t = Table("FACP", kFadtSize, 6);
  t[f::kMinorVersion] = 5;
  // 64-bit pointers only: the 32-bit FIRMWARE_CTRL and DSDT stay 0, as
  // the spec asks when the X_ fields are used.
  Put(t, f::kXFirmwareCtrl, facs, 8);
  Put(t, f::kXDsdt, dsdt, 8);
  Put(t, f::kSciInt, layout::kAcpiSciGsi.value, 2);
  // SMI_CMD 0: the machine is always in ACPI mode (§4.8.2.1; ACPICA's
  // acpi_hw_get_mode then does not even look at SCI_EN).
  Put(t, f::kPm1aEvtBlk, layout::kAcpiPm1aEventPort, 4);
  Put(t, f::kPm1aCntBlk, layout::kAcpiPm1aControlPort, 4);
  t[f::kPm1EvtLen] = 4;
  t[f::kPm1CntLen] = 2;
  PutGas(t, f::kXPm1aEvtBlk, kGasSystemIo, 32, 0, layout::kAcpiPm1aEventPort);
  PutGas(t, f::kXPm1aCntBlk, kGasSystemIo, 16, 0, layout::kAcpiPm1aControlPort);
  Put(t, f::kPLvl2Lat, 101, 2);   // > 100: no C2
  Put(t, f::kPLvl3Lat, 1001, 2);  // > 1000: no C3
  Put(t, f::kIapcBootArch,
      f::kLegacyDevices | f::kVgaNotPresent | f::kPcieAspmControls, 2);
  Put(t, f::kFlags,
      f::kWbinvd | f::kProcC1 | f::kPwrButton | f::kSlpButton | f::kResetRegSup,
      4);
  // Reset through the i8042 reset line, the same port and value as
  // Linux's next method (reboot=k), so both reach the same device.
  PutGas(t, f::kResetReg, kGasSystemIo, 8, kGasAccessByte,
         layout::kI8042CommandPort);
  t[f::kResetValue] = 0xfe;
  PutStr(t, f::kHypervisorVendor, "DEVPASS", 8);
  t[f::kHypervisorVendor + 7] = 0;
  Seal(t);
  return t;
}

Bytes Xsdt(const std::vector<uint64_t>& entries) {
  Bytes t = Table(
      "XSDT", static_cast<uint32_t>(kAcpiHeaderSize + 8 * entries.size()), 1);
  for (size_t i = 0; i < entries.size(); ++i)
    Put(t, kAcpiHeaderSize + 8 * i, entries[i], 8);
  Seal(t);
  return t;
}

Bytes Rsdp(uint64_t xsdt) {
  Bytes r(kRsdpSize, 0);
  PutStr(r, 0, "RSD PTR ", 8);
  PutStr(r, 9, kAcpiOemId, 6);
  r[15] = 2;  // revision: ACPI 2.0+ layout with the XSDT
  // RsdtAddress (16) stays 0: there is no RSDT, the XSDT replaces it.
  Put(r, 20, kRsdpSize, 4);
  Put(r, 24, xsdt, 8);
  r[8] = static_cast<uint8_t>(-ByteSum(r.data(), 20));         // first 20 bytes
  r[32] = static_cast<uint8_t>(-ByteSum(r.data(), r.size()));  // whole
  return r;
}

}  // namespace

aml::Bytes BuildDsdtAml(const AcpiConfig& config) {
  using aml::Bytes, aml::Cacheability, aml::Cat, aml::Device, aml::DWordMemory,
      aml::EisaId, aml::Integer, aml::IoPort, aml::IrqNoFlags, aml::Name,
      aml::Package, aml::QWordMemory, aml::ResourceTemplate, aml::Scope,
      aml::WordBusNumber, aml::WordIo;
  const uint64_t mmio64 = layout::Mmio64Base(config.ram_end).value;
  const Bytes crs = ResourceTemplate({
      WordBusNumber(0x00, 0xff),
      // The configuration ports, consumed by the bridge itself (Linux
      // drops them from the windows, resource_is_pcicfg_ioport).
      IoPort(pci::kConfigAddressPort, pci::kConfigAddressPort, 1,
             static_cast<uint8_t>(pci::kConfigPortsSize)),
      WordIo(0x0000, static_cast<uint16_t>(pci::kConfigAddressPort - 1)),
      WordIo(static_cast<uint16_t>(pci::kConfigAddressPort +
                                   pci::kConfigPortsSize),
             0xffff),
      // Neither window is prefetchable, so Linux keeps any BAR devpass
      // places in it (it refuses a non-prefetchable BAR in a prefetchable
      // window, pci_find_parent_resource).
      DWordMemory(static_cast<uint32_t>(layout::kPciHole.value),
                  static_cast<uint32_t>(layout::kPciHoleMmioEnd.value - 1),
                  Cacheability::kNonCacheable),
      QWordMemory(mmio64, mmio64 + layout::kMmio64Size - 1,
                  Cacheability::kCacheable),
  });
  // _PRT (§6.2.13): {address = slot << 16 | 0xFFFF (any function), pin
  // (0 = INTA), source 0 (a GSI, not a link device), GSI}.
  std::vector<Bytes> prt;
  for (int slot = 1; slot < 32; ++slot) {
    for (int pin = 0; pin < 4; ++pin) {
      prt.push_back(
          Package({Integer((static_cast<uint64_t>(slot) << 16) | 0xffff),
                   Integer(static_cast<uint64_t>(pin)), Integer(0),
                   Integer(layout::PciIntxGsi(slot, pin + 1).value)}));
    }
  }
  const Bytes pci0 = Device(
      "PCI0",
      Cat({
          // Conventional PCI: PNP0A08 (PCI Express) would make Linux look for
          // ECAM in an MCFG and negotiate _OSC, neither of which exists.
          Name("_HID", EisaId("PNP0A03")),
          Name("_CID", EisaId("PNP0A03")),
          Name("_SEG", Integer(0)),
          Name("_BBN", Integer(0)),
          Name("_UID", Integer(0)),
          Name("_CRS", crs),
          Name("_PRT", Package(prt)),
      }));
  const Bytes com1 = Device(
      "COM1",
      Cat({
          Name("_HID", EisaId("PNP0501")),
          Name("_UID", Integer(1)),
          Name("_CRS",
               ResourceTemplate(
                   {IoPort(layout::kCom1Port, layout::kCom1Port, 1, 8),
                    IrqNoFlags(static_cast<uint8_t>(layout::kCom1Gsi.value))})),
      }));
  const Bytes rtc = Device(
      "RTC", Cat({
                 Name("_HID", EisaId("PNP0B00")),
                 Name("_CRS", ResourceTemplate({IoPort(layout::kRtcPort,
                                                       layout::kRtcPort, 1, 2),
                                                IrqNoFlags(8)})),
             }));
  return Cat({
      // \_S5 (§7.4.2.5): {SLP_TYPa, SLP_TYPb, reserved, reserved}.
      Name("\\_S5", Package({Integer(kAcpiS5SleepType), Integer(0), Integer(0),
                             Integer(0)})),
      Scope("\\_SB", Cat({pci0, com1, rtc})),
  });
}

Result<std::vector<uint8_t>> BuildAcpiTables(const AcpiConfig& config,
                                             Gpa base) {
  if (config.cpus < 1 || config.cpus > kMaxVcpus) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("--cpus {}: devpass supports 1 to {} vCPUs",
                                 config.cpus, kMaxVcpus));
  }
  const Bytes dsdt = Dsdt(config);
  const Bytes madt = Madt(config.cpus);
  const Bytes facs = Facs();

  // Offsets from base: RSDP, XSDT, FADT, FACS (64-byte aligned, §5.2.10),
  // MADT, DSDT; tables 16-byte aligned.
  auto align = [](uint64_t v, uint64_t a) { return (v + a - 1) / a * a; };
  const uint64_t xsdt_off = align(kRsdpSize, 16);
  const uint64_t xsdt_len = kAcpiHeaderSize + 8 * 2;
  const uint64_t fadt_off = align(xsdt_off + xsdt_len, 16);
  const uint64_t facs_off = align(fadt_off + kFadtSize, 64);
  const uint64_t madt_off = align(facs_off + kFacsSize, 16);
  const uint64_t dsdt_off = align(madt_off + madt.size(), 16);
  const uint64_t end = dsdt_off + dsdt.size();
  if (end > layout::kAcpiTablesMax) {
    return MakeError(
        ErrorCode::kInternal,
        fmt::format("the ACPI tables take {} bytes, more than their {} "
                    "bytes at {:#x}",
                    end, layout::kAcpiTablesMax, base.value));
  }
  const uint64_t b = base.value;
  const Bytes fadt = Fadt(b + facs_off, b + dsdt_off);
  const Bytes xsdt = Xsdt({b + fadt_off, b + madt_off});
  const Bytes rsdp = Rsdp(b + xsdt_off);

  std::vector<uint8_t> out(end, 0);
  auto place = [&out](uint64_t off, const Bytes& t) {
    std::memcpy(out.data() + off, t.data(), t.size());
  };
  place(0, rsdp);
  place(xsdt_off, xsdt);
  place(fadt_off, fadt);
  place(facs_off, facs);
  place(madt_off, madt);
  place(dsdt_off, dsdt);
  return out;
}

}  // namespace devpass::vmm
