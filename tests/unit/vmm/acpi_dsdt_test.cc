// The DSDT decoded back as an OS reads it: \_S5, the PCI root bridge's
// identity, its _CRS windows (resource descriptors parsed by tag) and its
// _PRT (every slot 1-31, INTA-INTD, to layout::PciIntxGsi), COM1 and RTC.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "aml_reader.h"
#include "vmm/acpi.h"
#include "vmm/mptable.h"

namespace devpass::vmm {
namespace {

using testing::AmlNode;

using testing::Le;

class Dsdt {
 public:
  explicit Dsdt(uint64_t ram_end) {
    const aml::Bytes body = BuildDsdtAml({2, ram_end});
    testing::AmlReader r(body);
    nodes_ = r.Parse();
    error_ = r.error();
    testing::IndexAml(nodes_, "\\", index_);
  }
  const std::string& error() const { return error_; }
  // The value of Name(path, value), or nullptr (with a failure).
  const AmlNode* Value(const std::string& path) const {
    auto it = index_.find(path);
    if (it == index_.end() || it->second->kind != AmlNode::kName) {
      ADD_FAILURE() << "no Name " << path;
      return nullptr;
    }
    return &it->second->children.at(0);
  }
  bool Has(const std::string& path) const { return index_.count(path) > 0; }

 private:
  std::vector<AmlNode> nodes_;
  std::string error_;
  std::map<std::string, const AmlNode*> index_;
};

struct Range {
  uint8_t type;  // aml::kMemoryRange, kIoRange, kBusNumberRange
  uint64_t min, max, len;
  uint8_t general_flags, type_flags;
};
struct Resources {
  std::vector<Range> ranges;  // address space descriptors
  std::vector<std::tuple<uint16_t, uint16_t, int>>
      io;  // IO(): min, max, length
  std::vector<int> irqs;
  bool end_tag = false;
};

// Resource descriptors by their tags (ACPI 6.5 §6.4).
Resources ParseResources(const std::vector<uint8_t>& b) {
  Resources r;
  size_t i = 0;
  while (i < b.size() && !r.end_tag) {
    const uint8_t tag = b[i];
    if (tag & 0x80) {  // large item: tag, 16-bit length
      const size_t len = b[i + 1] | (b[i + 2] << 8);
      const uint8_t* d = &b[i + 3];
      const int w = tag == aml::kWordAddressTag    ? 2
                    : tag == aml::kDWordAddressTag ? 4
                                                   : 8;
      EXPECT_EQ(len, static_cast<size_t>(3 + 5 * w)) << "tag " << int{tag};
      r.ranges.push_back({d[0], Le(d + 3 + w, w), Le(d + 3 + 2 * w, w),
                          Le(d + 3 + 4 * w, w), d[1], d[2]});
      EXPECT_EQ(Le(d + 3 + 3 * w, w), 0u);  // no translation
      i += 3 + len;
    } else {  // small item: bits 6-3 name, 2-0 length
      const size_t len = tag & 7;
      const uint8_t* d = &b[i + 1];
      switch (tag & 0xf8) {
        case 0x20:  // IRQ
          for (int irq = 0; irq < 16; ++irq) {
            if (Le(d, 2) & (1u << irq)) r.irqs.push_back(irq);
          }
          break;
        case 0x40:  // I/O port
          r.io.emplace_back(static_cast<uint16_t>(Le(d + 1, 2)),
                            static_cast<uint16_t>(Le(d + 3, 2)), d[6]);
          break;
        case 0x78:
          r.end_tag = true;
          break;
        default:
          ADD_FAILURE() << "unexpected small item " << int{tag};
      }
      i += 1 + len;
    }
  }
  EXPECT_EQ(i, b.size()) << "bytes after the end tag";
  return r;
}

TEST(Dsdt, DecodesWithoutErrors) {
  Dsdt d(512 * kMiB);
  EXPECT_EQ(d.error(), "");
}

TEST(Dsdt, S5PackageCarriesTheSleepType) {
  Dsdt d(512 * kMiB);
  const AmlNode* s5 = d.Value("\\_S5_");
  ASSERT_NE(s5, nullptr);
  ASSERT_EQ(s5->kind, AmlNode::kPackage);
  ASSERT_EQ(s5->children.size(), 4u);
  EXPECT_EQ(s5->children[0].kind, AmlNode::kInteger);
  EXPECT_EQ(s5->children[0].integer, kAcpiS5SleepType);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(s5->children[i].integer, 0u);
  // Only S5: a guest must not try a sleep state devpass cannot do.
  for (const char* s : {"\\_S1_", "\\_S2_", "\\_S3_", "\\_S4_"})
    EXPECT_FALSE(d.Has(s)) << s;
}

TEST(Dsdt, PciRootBridgeIdentity) {
  Dsdt d(512 * kMiB);
  const AmlNode* hid = d.Value("\\_SB_.PCI0._HID");
  ASSERT_NE(hid, nullptr);
  EXPECT_EQ(hid->integer, aml::EisaIdValue("PNP0A03"));
  EXPECT_EQ(d.Value("\\_SB_.PCI0._CID")->integer, aml::EisaIdValue("PNP0A03"));
  for (const char* n : {"_SEG", "_BBN", "_UID"}) {
    const AmlNode* v = d.Value(std::string("\\_SB_.PCI0.") + n);
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v->kind, AmlNode::kInteger);
    EXPECT_EQ(v->integer, 0u) << n;
  }
}

void ExpectWindows(uint64_t ram_end, uint64_t want_mmio64) {
  Dsdt d(ram_end);
  const AmlNode* crs = d.Value("\\_SB_.PCI0._CRS");
  ASSERT_NE(crs, nullptr);
  ASSERT_EQ(crs->kind, AmlNode::kBuffer);
  Resources r = ParseResources(crs->bytes);
  EXPECT_TRUE(r.end_tag);
  ASSERT_EQ(r.io.size(), 1u);
  EXPECT_EQ(r.io[0], std::make_tuple(uint16_t{0xcf8}, uint16_t{0xcf8}, 8));
  std::vector<std::tuple<uint8_t, uint64_t, uint64_t>> got;
  for (const Range& w : r.ranges) {
    EXPECT_EQ(w.len, w.max - w.min + 1);
    EXPECT_EQ(w.general_flags, 0x0c);  // producer, fixed min and max
    if (w.type == aml::kMemoryRange) {
      EXPECT_EQ(w.type_flags & 1, 1);         // read-write
      EXPECT_NE((w.type_flags >> 1) & 3, 3);  // not prefetchable
    }
    got.emplace_back(w.type, w.min, w.max);
  }
  const std::vector<std::tuple<uint8_t, uint64_t, uint64_t>> want = {
      {aml::kBusNumberRange, 0, 0xff},
      {aml::kIoRange, 0x0000, 0x0cf7},
      {aml::kIoRange, 0x0d00, 0xffff},
      {aml::kMemoryRange, layout::kPciHole.value,
       layout::kPciHoleMmioEnd.value - 1},
      {aml::kMemoryRange, want_mmio64, want_mmio64 + layout::kMmio64Size - 1},
  };
  EXPECT_EQ(got, want);
  // The windows hold what devpass places BARs in (layout.h).
  EXPECT_LE(0x0d00u, layout::kPciIoStart);
  EXPECT_EQ(want_mmio64, layout::Mmio64Base(ram_end).value);
}

TEST(Dsdt, CrsDescribesBusIoAndBothMemoryWindows) {
  ExpectWindows(512 * kMiB, 4 * kGiB);
  // RAM above 4 GiB pushes the 64-bit window to the next GiB above it.
  ExpectWindows(6 * kGiB + 512 * kMiB, 7 * kGiB);
}

TEST(Dsdt, PrtRoutesEverySlotAndPinToItsGsi) {
  Dsdt d(512 * kMiB);
  const AmlNode* prt = d.Value("\\_SB_.PCI0._PRT");
  ASSERT_NE(prt, nullptr);
  ASSERT_EQ(prt->kind, AmlNode::kPackage);
  EXPECT_EQ(prt->children.size(), 31u * 4);
  std::set<std::pair<int, int>> seen;
  for (const AmlNode& e : prt->children) {
    ASSERT_EQ(e.kind, AmlNode::kPackage);
    ASSERT_EQ(e.children.size(), 4u);
    for (const AmlNode& f : e.children) ASSERT_EQ(f.kind, AmlNode::kInteger);
    const uint64_t address = e.children[0].integer;
    EXPECT_EQ(address & 0xffff, 0xffffu);  // any function
    const int slot = static_cast<int>(address >> 16);
    const int pin = static_cast<int>(e.children[1].integer);  // 0 = INTA
    ASSERT_GE(slot, 1);
    ASSERT_LE(slot, 31);
    ASSERT_LE(pin, 3);
    EXPECT_EQ(e.children[2].integer, 0u);  // source: a GSI
    EXPECT_EQ(e.children[3].integer, layout::PciIntxGsi(slot, pin + 1).value)
        << "slot " << slot << " pin " << pin;
    EXPECT_TRUE(seen.insert({slot, pin}).second)
        << "duplicate " << slot << "/" << pin;
  }
  EXPECT_EQ(seen.size(), 124u);
  // Spot checks of the swizzle: 00:01.0 INTA -> 17, 00:07.0 INTB -> 16.
  EXPECT_EQ(layout::PciIntxGsi(1, 1).value, 17u);
  EXPECT_EQ(layout::PciIntxGsi(7, 2).value, 16u);
}

TEST(Dsdt, Com1AndRtc) {
  Dsdt d(512 * kMiB);
  EXPECT_EQ(d.Value("\\_SB_.COM1._HID")->integer, aml::EisaIdValue("PNP0501"));
  Resources com = ParseResources(d.Value("\\_SB_.COM1._CRS")->bytes);
  ASSERT_EQ(com.io.size(), 1u);
  EXPECT_EQ(std::get<0>(com.io[0]), layout::kCom1Port);
  EXPECT_EQ(std::get<2>(com.io[0]), 8);
  EXPECT_EQ(com.irqs, std::vector<int>{4});
  EXPECT_EQ(d.Value("\\_SB_.RTC_._HID")->integer, aml::EisaIdValue("PNP0B00"));
  Resources rtc = ParseResources(d.Value("\\_SB_.RTC_._CRS")->bytes);
  ASSERT_EQ(rtc.io.size(), 1u);
  EXPECT_EQ(std::get<0>(rtc.io[0]), layout::kRtcPort);
  EXPECT_EQ(rtc.irqs, std::vector<int>{8});
}

}  // namespace
}  // namespace devpass::vmm
