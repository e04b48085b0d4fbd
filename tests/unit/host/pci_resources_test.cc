#include "host/pci_resources.h"

#include <gtest/gtest.h>

#include "fake_host.h"

namespace devpass::host {
namespace {

using testing::FakeHost;

TEST(PciResourcesTest, ParsesKindsSizesPrefetchAndRom) {
  // A GPU-like layout: BAR0 mem32 16 MiB, BAR1 mem64 prefetchable 256 MiB
  // (BAR1+2 pair; line 2 empty), BAR5 io 128 bytes, ROM 512 KiB.
  std::string text =
      "0x00000000f6000000 0x00000000f6ffffff 0x0000000000040200\n"
      "0x00000000e0000000 0x00000000efffffff 0x000000000014220c\n"
      "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
      "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
      "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
      "0x000000000000e000 0x000000000000e07f 0x0000000000040101\n"
      "0x00000000f7000000 0x00000000f707ffff 0x0000000000046200\n"
      "0x0000000000000000 0x0000000000000000 0x0000000000000000\n";
  auto bars = ParseResources(text);
  ASSERT_EQ(bars.size(), 4u);
  EXPECT_EQ(bars[0].index, 0);
  EXPECT_EQ(bars[0].kind, BarKind::kMem32);
  EXPECT_EQ(bars[0].start, 0xf6000000u);
  EXPECT_EQ(bars[0].size, 16u << 20);
  EXPECT_FALSE(bars[0].prefetchable);
  EXPECT_EQ(bars[1].index, 1);
  EXPECT_EQ(bars[1].kind, BarKind::kMem64);
  EXPECT_TRUE(bars[1].prefetchable);
  EXPECT_EQ(bars[1].size, 256u << 20);
  EXPECT_EQ(bars[2].index, 5);
  EXPECT_EQ(bars[2].kind, BarKind::kIo);
  EXPECT_EQ(bars[2].size, 128u);
  EXPECT_EQ(bars[3].index, kRomResourceIndex);
  EXPECT_TRUE(bars[3].is_rom);
  EXPECT_EQ(bars[3].size, 512u << 10);
  EXPECT_FALSE(bars[0].is_rom);
}

TEST(PciResourcesTest, IgnoresBridgeWindowsAndGarbage) {
  std::string text =
      "garbage line\n"
      "0x1000 0x0fff 0x200\n"  // end before start
      "0x0 0x0 0x0\n"
      "0xfe000000 0xfe0fffff 0x0\n"  // no IO/MEM flag: not a resource
      "0x0 0x0 0x0\n"
      "0x0 0x0 0x0\n"
      "0x0 0x0 0x0\n"
      "0xd0000000 0xdfffffff 0x200\n";  // line 7: bridge window / VF BAR
  EXPECT_TRUE(ParseResources(text).empty());
  EXPECT_TRUE(ParseResources("").empty());
}

TEST(PciResourcesTest, ReadsFromFakeHost) {
  FakeHost host;
  host.AddDevice({.bdf = "0000:01:00.0",
                  .resources = {{0xfebf0000, 0xfebfffff, testing::kResourceMem},
                                {0, 0, 0},
                                {0xc000, 0xc01f, testing::kResourceIo}}});
  auto bars = ReadBars(host.root(), *PciAddress::Parse("0000:01:00.0"));
  ASSERT_TRUE(bars) << bars.error().ToString();
  ASSERT_EQ(bars->size(), 2u);
  EXPECT_EQ((*bars)[0].size, 64u << 10);
  EXPECT_EQ((*bars)[1].index, 2);
  EXPECT_EQ((*bars)[1].kind, BarKind::kIo);
  auto missing = ReadBars(host.root(), *PciAddress::Parse("0000:02:00.0"));
  EXPECT_FALSE(missing);
}

TEST(PciResourcesTest, HumanSize) {
  EXPECT_EQ(HumanSize(256u << 20), "256 MiB");
  EXPECT_EQ(HumanSize(4096), "4 KiB");
  EXPECT_EQ(HumanSize(uint64_t{16} << 30), "16 GiB");
  EXPECT_EQ(HumanSize(100), "100 B");
  EXPECT_EQ(HumanSize(1536), "1536 B");
  EXPECT_EQ(BarKindName(BarKind::kMem64), "mem64");
}

}  // namespace
}  // namespace devpass::host
