// The AML builder: PkgLength in its 1-4 byte forms, the integer prefixes,
// names, EISA IDs, the objects and resource descriptors, decoded back with
// the test-only reader (aml_reader.h).

#include "vmm/aml.h"

#include <gtest/gtest.h>

#include "aml_reader.h"

namespace devpass::vmm {
namespace {

using aml::Bytes;
using testing::AmlNode;
using testing::AmlReader;

// Decodes a PkgLength at the start of `b` (ACPI 6.5 §20.2.4).
size_t DecodePkgLength(const Bytes& b) {
  const int follow = b[0] >> 6;
  if (follow == 0) return b[0] & 0x3f;
  size_t len = b[0] & 0x0f;
  for (int i = 0; i < follow; ++i)
    len |= static_cast<size_t>(b[1 + i]) << (4 + 8 * i);
  return len;
}

TEST(AmlPkgLength, OneToFourByteForms) {
  struct Case {
    size_t payload;
    Bytes want;
  };
  const Case cases[] = {
      {0, {0x01}},
      {62, {0x3f}},                   // 63 with itself: the 1-byte maximum
      {63, {0x41, 0x04}},             // 65 = 0x041
      {0xffd, {0x4f, 0xff}},          // 0xFFF: the 2-byte maximum
      {0xffe, {0x81, 0x00, 0x01}},    // 0x1001
      {0xffffc, {0x8f, 0xff, 0xff}},  // 0xFFFFF: the 3-byte maximum
      {0xffffd, {0xc1, 0x00, 0x00, 0x01}},  // 0x100001
      {0xffffffb, {0xcf, 0xff, 0xff, 0xff}},
  };
  for (const Case& c : cases) {
    Bytes got = aml::PkgLength(c.payload);
    EXPECT_EQ(got, c.want) << c.payload;
    // The length counts the PkgLength bytes themselves.
    EXPECT_EQ(DecodePkgLength(got), c.payload + got.size()) << c.payload;
  }
}

TEST(AmlInteger, ShortestPrefix) {
  EXPECT_EQ(aml::Integer(0), (Bytes{0x00}));      // ZeroOp
  EXPECT_EQ(aml::Integer(1), (Bytes{0x01}));      // OneOp
  EXPECT_EQ(aml::Integer(~0ull), (Bytes{0xff}));  // OnesOp
  EXPECT_EQ(aml::Integer(2), (Bytes{0x0a, 0x02}));
  EXPECT_EQ(aml::Integer(0xff), (Bytes{0x0a, 0xff}));
  EXPECT_EQ(aml::Integer(0x100), (Bytes{0x0b, 0x00, 0x01}));
  EXPECT_EQ(aml::Integer(0xffff), (Bytes{0x0b, 0xff, 0xff}));
  EXPECT_EQ(aml::Integer(0x10000), (Bytes{0x0c, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(aml::Integer(0xffffffff), (Bytes{0x0c, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(aml::Integer(0x100000000), (Bytes{0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(aml::Integer(0xfffffffffffffffe),
            (Bytes{0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
}

TEST(AmlInteger, DecodesBack) {
  for (uint64_t v : {0ull, 1ull, 0x2aull, 0x1234ull, 0xfec00000ull,
                     0x1000000000ull, ~0ull}) {
    Bytes b = aml::Integer(v);
    AmlReader r(b);
    auto nodes = r.Parse();
    ASSERT_EQ(r.error(), "");
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(nodes[0].integer, v);
  }
}

TEST(AmlName, SegmentsPrefixesAndPadding) {
  EXPECT_EQ(aml::NameString("_S5"), (Bytes{'_', 'S', '5', '_'}));
  EXPECT_EQ(aml::NameString("\\_SB"), (Bytes{'\\', '_', 'S', 'B', '_'}));
  EXPECT_EQ(aml::NameString("\\_SB.PCI0"),
            (Bytes{'\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
  EXPECT_EQ(aml::NameString("A.B.C"),
            (Bytes{0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_',
                   '_', '_'}));
  EXPECT_EQ(aml::NameString("^^RTC"), (Bytes{'^', '^', 'R', 'T', 'C', '_'}));
  EXPECT_EQ(aml::NameString("\\"), (Bytes{'\\', 0x00}));
}

TEST(AmlNameDeathTest, BadNamesAreBugs) {
  EXPECT_DEATH(aml::NameString("TOOLONG"), "bad name segment");
  EXPECT_DEATH(aml::NameString("1ABC"), "bad name segment");
  EXPECT_DEATH(aml::NameString("ab"), "bad name segment");
  EXPECT_DEATH(aml::NameString("A..B"), "bad name segment");
  EXPECT_DEATH(aml::EisaId("PNP0A0"), "not an EISA ID");
}

TEST(AmlEisaId, CompressedLikeAsl) {
  // Values iasl produces for EisaId("...").
  EXPECT_EQ(aml::EisaIdValue("PNP0A03"), 0x030ad041u);
  EXPECT_EQ(aml::EisaIdValue("PNP0A08"), 0x080ad041u);
  EXPECT_EQ(aml::EisaIdValue("PNP0501"), 0x0105d041u);
  EXPECT_EQ(aml::EisaIdValue("PNP0B00"), 0x000bd041u);
  EXPECT_EQ(aml::EisaId("PNP0A03"), (Bytes{0x0c, 0x41, 0xd0, 0x0a, 0x03}));
}

TEST(AmlString, NulTerminated) {
  EXPECT_EQ(aml::String("AB"), (Bytes{0x0d, 'A', 'B', 0}));
}

TEST(AmlObjects, NameDeviceScopeMethodPackageBuffer) {
  const Bytes aml = aml::Cat({
      aml::Name("\\_S5", aml::Package({aml::Integer(5), aml::Integer(0)})),
      aml::Scope(
          "\\_SB",
          aml::Device("DEV0", aml::Cat({
                                  aml::Name("_HID", aml::String("ABCD0001")),
                                  aml::Name("_CRS", aml::Buffer({1, 2, 3})),
                                  aml::Method("_STA", 0, false,
                                              aml::Return(aml::Integer(0x0f))),
                                  aml::Method("SERL", 2, true, {}),
                              }))),
  });
  // The exact bytes of Name(\_S5, Package(2){5, Zero}).
  const Bytes s5 = {0x08, '\\', '_',  'S',  '5',  '_',
                    0x12, 0x05, 0x02, 0x0a, 0x05, 0x00};
  ASSERT_GE(aml.size(), s5.size());
  EXPECT_EQ(Bytes(aml.begin(), aml.begin() + static_cast<long>(s5.size())), s5);

  AmlReader r(aml);
  auto nodes = r.Parse();
  ASSERT_EQ(r.error(), "");
  std::map<std::string, const AmlNode*> idx;
  testing::IndexAml(nodes, "\\", idx);
  ASSERT_TRUE(idx.count("\\_S5_"));
  const AmlNode& pkg = idx["\\_S5_"]->children.at(0);
  ASSERT_EQ(pkg.kind, AmlNode::kPackage);
  ASSERT_EQ(pkg.children.size(), 2u);
  EXPECT_EQ(pkg.children[0].integer, 5u);
  ASSERT_TRUE(idx.count("\\_SB_.DEV0"));
  EXPECT_EQ(idx["\\_SB_.DEV0"]->kind, AmlNode::kDevice);
  EXPECT_EQ(idx["\\_SB_.DEV0._HID"]->children.at(0).text, "ABCD0001");
  EXPECT_EQ(idx["\\_SB_.DEV0._CRS"]->children.at(0).bytes, (Bytes{1, 2, 3}));
  const AmlNode* sta = idx["\\_SB_.DEV0._STA"];
  ASSERT_NE(sta, nullptr);
  EXPECT_EQ(sta->kind, AmlNode::kMethod);
  EXPECT_EQ(sta->integer, 0u);  // no arguments, not serialized
  ASSERT_EQ(sta->children.size(), 1u);
  EXPECT_EQ(sta->children[0].kind, AmlNode::kReturn);
  EXPECT_EQ(sta->children[0].children.at(0).integer, 0x0fu);
  EXPECT_EQ(idx["\\_SB_.DEV0.SERL"]->integer,
            0x0au);  // 2 arguments | serialized
}

TEST(AmlObjects, LargePackageUsesLongPkgLength) {
  std::vector<Bytes> elements;
  for (int i = 0; i < 200; ++i) elements.push_back(aml::Integer(0x12345678));
  const Bytes pkg = aml::Package(elements);
  EXPECT_EQ(pkg[0], aml::kPackageOp);
  EXPECT_EQ(pkg[1] >> 6, 1);  // 2-byte PkgLength: 1 + 200 * 5 + 2 bytes
  EXPECT_EQ(DecodePkgLength(Bytes(pkg.begin() + 1, pkg.end())), pkg.size() - 1);
  AmlReader r(pkg);
  auto nodes = r.Parse();
  ASSERT_EQ(r.error(), "");
  ASSERT_EQ(nodes.at(0).children.size(), 200u);
  EXPECT_EQ(nodes[0].children[199].integer, 0x12345678u);
}

TEST(AmlResources, DescriptorBytes) {
  EXPECT_EQ(aml::IoPort(0x3f8, 0x3f8, 1, 8),
            (Bytes{0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 1, 8}));
  EXPECT_EQ(aml::IrqNoFlags(4), (Bytes{0x22, 0x10, 0x00}));
  EXPECT_EQ(aml::IrqNoFlags(8), (Bytes{0x22, 0x00, 0x01}));
  // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0,
  // 0xFF, 0, 0x100) as iasl encodes it.
  EXPECT_EQ(aml::WordBusNumber(0, 0xff),
            (Bytes{0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00,
                   0xff, 0x00, 0x00, 0x00, 0x00, 0x01}));
  const Bytes io = aml::WordIo(0x0d00, 0xffff);
  ASSERT_EQ(io.size(), 16u);
  EXPECT_EQ(io[3], aml::kIoRange);
  EXPECT_EQ(io[5], 0x03);                     // EntireRange
  EXPECT_EQ(io[14] | (io[15] << 8), 0xf300);  // length
  const Bytes m32 = aml::DWordMemory(0xc0000000, 0xfebfffff,
                                     aml::Cacheability::kNonCacheable);
  ASSERT_EQ(m32.size(), 26u);
  EXPECT_EQ(m32[0], aml::kDWordAddressTag);
  EXPECT_EQ(m32[1], 23);
  EXPECT_EQ(m32[5], 0x01);  // read-write, non-cacheable
  const Bytes m64 = aml::QWordMemory(0x100000000, 0x10ffffffff,
                                     aml::Cacheability::kCacheable);
  ASSERT_EQ(m64.size(), 46u);
  EXPECT_EQ(m64[0], aml::kQWordAddressTag);
  EXPECT_EQ(m64[1], 43);
  EXPECT_EQ(m64[5], 0x03);  // read-write, cacheable
  const Bytes tmpl = aml::ResourceTemplate({aml::IrqNoFlags(4)});
  // Buffer (5) {0x22, 0x10, 0x00, 0x79, 0x00}
  EXPECT_EQ(tmpl,
            (Bytes{0x11, 0x08, 0x0a, 0x05, 0x22, 0x10, 0x00, 0x79, 0x00}));
}

TEST(AmlResourcesDeathTest, RangesThatDoNotFit) {
  EXPECT_DEATH(aml::WordIo(0, 0xffff), "does not fit");  // length 0x10000
  EXPECT_DEATH(aml::WordIo(2, 1), "does not fit");
  EXPECT_DEATH(aml::IrqNoFlags(16), "IRQ 16");
}

}  // namespace
}  // namespace devpass::vmm
