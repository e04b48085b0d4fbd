#include "vmm/mptable.h"

#include <fmt/format.h>

#include <cstring>
#include <string_view>

namespace devpass::vmm {
namespace {

class Writer {
 public:
  void U8(uint8_t v) { b_.push_back(v); }
  void U16(uint16_t v) {
    U8(v & 0xff);
    U8(v >> 8);
  }
  void U32(uint32_t v) {
    U16(v & 0xffff);
    U16(v >> 16);
  }
  void Str(std::string_view s, size_t n) {
    for (size_t i = 0; i < n; ++i) U8(i < s.size() ? s[i] : ' ');
  }
  void Zeros(size_t n) { b_.insert(b_.end(), n, 0); }
  std::vector<uint8_t>& bytes() { return b_; }

 private:
  std::vector<uint8_t> b_;
};

constexpr uint8_t kBusPci = 0;
constexpr uint8_t kBusIsa = 1;

}  // namespace

uint8_t ByteSum(const uint8_t* data, size_t len) {
  uint8_t s = 0;
  for (size_t i = 0; i < len; ++i) s = static_cast<uint8_t>(s + data[i]);
  return s;
}

Result<std::vector<uint8_t>> BuildMpTable(int cpus, Gpa base) {
  if (cpus < 1 || cpus > kMaxVcpus) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("--cpus {}: devpass supports 1 to {} vCPUs",
                                 cpus, kMaxVcpus));
  }
  const uint8_t ioapic_id = static_cast<uint8_t>(cpus);

  // ---- configuration table (§4.2): header, then entries.
  Writer t;
  t.Str("PCMP", 4);
  t.U16(0);              // base table length, patched below
  t.U8(4);               // spec revision 1.4
  t.U8(0);               // checksum, patched below
  t.Str("DEVPASS", 8);   // OEM ID
  t.Str("KVM VMM", 12);  // product ID
  t.U32(0);              // OEM table pointer
  t.U16(0);              // OEM table size
  t.U16(0);              // entry count, patched below
  t.U32(static_cast<uint32_t>(layout::kLocalApic.value));
  t.U16(0);  // extended table length
  t.U8(0);   // extended table checksum
  t.U8(0);   // reserved
  uint16_t entries = 0;

  for (int i = 0; i < cpus; ++i) {  // §4.3.1, 20 bytes
    t.U8(kMpProcessor);
    t.U8(static_cast<uint8_t>(i));  // local APIC ID
    t.U8(kApicVersion);
    t.U8(0x01 | (i == 0 ? 0x02 : 0));  // EN, BP for the boot processor
    t.U32(0x600);  // CPU signature: family 6 (informational)
    t.U32(0x201);  // feature flags: FPU, APIC
    t.Zeros(8);
    ++entries;
  }
  for (auto [id, name] :
       {std::pair{kBusPci, "PCI"}, std::pair{kBusIsa, "ISA"}}) {
    t.U8(kMpBus);  // §4.3.2, 8 bytes
    t.U8(id);
    t.Str(name, 6);
    ++entries;
  }
  t.U8(kMpIoApic);  // §4.3.3, 8 bytes
  t.U8(ioapic_id);
  t.U8(kIoApicVersion);
  t.U8(0x01);  // EN
  t.U32(static_cast<uint32_t>(layout::kIoApic.value));
  ++entries;
  for (uint8_t irq = 0; irq < 16; ++irq) {  // §4.3.4, 8 bytes
    t.U8(kMpIoInterrupt);
    t.U8(0);   // INT (vectored)
    t.U16(0);  // polarity/trigger: conforming to the ISA bus (edge, high)
    t.U8(kBusIsa);
    t.U8(irq);  // source bus IRQ
    t.U8(ioapic_id);
    t.U8(irq);  // IOAPIC INTIN#
    ++entries;
  }
  // PCI INTx of bus 0 (§D.3): the source bus IRQ names device and pin.
  for (int slot = kMpFirstPciSlot; slot < 32; ++slot) {
    for (int pin = 1; pin <= 4; ++pin) {
      t.U8(kMpIoInterrupt);
      t.U8(0);  // INT (vectored)
      t.U16(kMpPciIntxFlags);
      t.U8(kBusPci);
      t.U8(static_cast<uint8_t>((slot << 2) | (pin - 1)));
      t.U8(ioapic_id);
      t.U8(static_cast<uint8_t>(layout::PciIntxGsi(slot, pin).value));
      ++entries;
    }
  }
  for (auto [type, lint] :
       {std::pair<uint8_t, uint8_t>{3, 0},     // ExtINT -> LINT0
        std::pair<uint8_t, uint8_t>{1, 1}}) {  // NMI -> LINT1
    t.U8(kMpLocalInterrupt);                   // §4.3.5, 8 bytes
    t.U8(type);
    t.U16(0);
    t.U8(kBusIsa);
    t.U8(0);
    t.U8(0xff);  // every local APIC
    t.U8(lint);
    ++entries;
  }
  std::vector<uint8_t>& table = t.bytes();
  const uint16_t len = static_cast<uint16_t>(table.size());
  table[4] = len & 0xff;
  table[5] = len >> 8;
  table[34] = entries & 0xff;
  table[35] = entries >> 8;
  table[7] = static_cast<uint8_t>(-ByteSum(table.data(), table.size()));

  if (table.size() > kMpFloatingOffset) {
    return MakeError(ErrorCode::kInternal,
                     fmt::format("MP configuration table of {} bytes does not "
                                 "fit in its {} bytes",
                                 table.size(), kMpFloatingOffset));
  }

  // ---- floating pointer (§4.1), 16 bytes, pointing back at the table.
  Writer f;
  f.Str("_MP_", 4);
  f.U32(static_cast<uint32_t>(base.value));
  f.U8(1);     // length in 16-byte units
  f.U8(4);     // spec revision 1.4
  f.U8(0);     // checksum, patched below
  f.Zeros(5);  // feature bytes: 0 = a configuration table is present
  std::vector<uint8_t>& fp = f.bytes();
  fp[10] = static_cast<uint8_t>(-ByteSum(fp.data(), fp.size()));

  std::vector<uint8_t> out = std::move(table);
  out.resize(kMpFloatingOffset, 0);
  out.insert(out.end(), fp.begin(), fp.end());
  static_assert(kMpFloatingOffset + 16 <= layout::kMpTableMax);
  return out;
}

}  // namespace devpass::vmm
