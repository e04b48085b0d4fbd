// The byte-level parsers: capability chains as the kernel encodes them, the
// argsz re-query, hot reset lists, reserved_regions and PCI config space.

#include <gtest/gtest.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include <cstring>

#include "vfio/caps.h"
#include "vfio/group.h"
#include "vfio/pci_config.h"

namespace devpass::vfio {
namespace {

TEST(CapsTest, RegionInfoWithSparseTypeAndMsixCapsRoundTrips) {
  RegionInfo in;
  in.index = 0;
  in.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP;
  in.size = 0x4000;
  in.offset = 0;
  in.sparse_areas =
      std::vector<SparseMmapArea>{{0x0, 0x2000}, {0x3000, 0x1000}};
  in.type = RegionType{3, 7};
  in.msix_mappable = true;
  auto bytes = EncodeRegionInfo(in);
  auto out = ParseRegionInfo(bytes);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->flags & VFIO_REGION_INFO_FLAG_CAPS);
  EXPECT_EQ(out->size, 0x4000u);
  ASSERT_TRUE(out->sparse_areas);
  ASSERT_EQ(out->sparse_areas->size(), 2u);
  EXPECT_EQ((*out->sparse_areas)[1].offset, 0x3000u);
  EXPECT_EQ((*out->sparse_areas)[1].size, 0x1000u);
  ASSERT_TRUE(out->type);
  EXPECT_EQ(out->type->type, 3u);
  EXPECT_EQ(out->type->subtype, 7u);
  EXPECT_TRUE(out->msix_mappable);
}

TEST(CapsTest, RegionInfoWithoutCapsHasNoSparseAreas) {
  RegionInfo in;
  in.index = 7;
  in.size = 256;
  auto out = ParseRegionInfo(EncodeRegionInfo(in));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->index, 7u);
  EXPECT_FALSE(out->sparse_areas);
  EXPECT_FALSE(out->msix_mappable);
}

TEST(CapsTest, LoopingOrTruncatedChainsAreRejected) {
  RegionInfo in;
  in.type = RegionType{1, 1};
  auto bytes = EncodeRegionInfo(in);
  // Point the first capability's `next` back at itself.
  uint32_t first = 0;
  std::memcpy(&first, bytes.data() + offsetof(vfio_region_info, cap_offset), 4);
  std::memcpy(bytes.data() + first + offsetof(vfio_info_cap_header, next),
              &first, 4);
  auto looped = ParseRegionInfo(bytes);
  ASSERT_FALSE(looped);
  EXPECT_NE(looped.error().message.find("malformed"), std::string::npos);

  auto truncated = EncodeRegionInfo(in);
  truncated.resize(truncated.size() - 4);
  EXPECT_FALSE(ParseRegionInfo(truncated));
  EXPECT_FALSE(ParseRegionInfo(std::vector<uint8_t>(8, 0)));
}

TEST(CapsTest, IommuInfoWithIovaRangesAndDmaAvail) {
  IommuInfo in;
  in.flags = VFIO_IOMMU_INFO_PGSIZES;
  in.iova_pgsizes = 0x40201000;
  in.iova_ranges = {{0, 0xfedfffff}, {0xfef00000, 0xffffffffffff}};
  in.dma_avail = 65000;
  auto out = ParseIommuInfo(EncodeIommuInfo(in));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->iova_pgsizes, 0x40201000u);
  ASSERT_EQ(out->iova_ranges.size(), 2u);
  EXPECT_EQ(out->iova_ranges[0].end, 0xfedfffffu);
  EXPECT_EQ(out->iova_ranges[1].start, 0xfef00000u);
  EXPECT_EQ(out->dma_avail, 65000u);
}

TEST(CapsTest, QueryGrowingRepeatsWithTheArgszTheKernelAsksFor) {
  IommuInfo info;
  info.iova_ranges = {{0x1000, 0xffff}};
  const auto full = EncodeIommuInfo(info);
  int calls = 0;
  auto bytes =
      QueryGrowing(sizeof(vfio_iommu_type1_info), [&](std::vector<uint8_t>& b) {
        ++calls;
        uint32_t argsz = 0;
        std::memcpy(&argsz, b.data(), 4);
        if (argsz < full.size()) {
          // What type1 does: the fixed part, CAPS flag, argsz = needed, no
          // caps.
          vfio_iommu_type1_info head{};
          head.argsz = static_cast<uint32_t>(full.size());
          head.flags = VFIO_IOMMU_INFO_CAPS;
          std::memcpy(b.data(), &head, sizeof(head));
          return 0;
        }
        std::memcpy(b.data(), full.data(), full.size());
        return 0;
      });
  ASSERT_TRUE(bytes);
  EXPECT_EQ(calls, 2);
  auto parsed = ParseIommuInfo(*bytes);
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->iova_ranges.size(), 1u);
  EXPECT_EQ(parsed->iova_ranges[0].start, 0x1000u);

  auto failed = QueryGrowing(16, [](std::vector<uint8_t>&) { return ENOTTY; });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().sys_errno, ENOTTY);
}

TEST(CapsTest, HotResetInfoListsDevices) {
  std::vector<uint8_t> buf(sizeof(vfio_pci_hot_reset_info) +
                           2 * sizeof(vfio_pci_dependent_device));
  vfio_pci_hot_reset_info head{};
  head.argsz = static_cast<uint32_t>(buf.size());
  head.count = 2;
  std::memcpy(buf.data(), &head, sizeof(head));
  vfio_pci_dependent_device devs[2] = {{5, 0, 1, 0x00}, {6, 0, 1, 0x01}};
  std::memcpy(buf.data() + sizeof(head), devs, sizeof(devs));
  auto info = ParseHotResetInfo(buf);
  ASSERT_TRUE(info);
  ASSERT_EQ(info->devices.size(), 2u);
  EXPECT_EQ(info->devices[1].group_id, 6u);
  EXPECT_EQ(info->devices[1].devfn, 1);
  head.count = 3;  // claims more than the buffer holds
  std::memcpy(buf.data(), &head, sizeof(head));
  EXPECT_FALSE(ParseHotResetInfo(buf));
}

TEST(ReservedRegionsTest, ParsesTheSysfsFormat) {
  auto r = ParseReservedRegions(
      "0x00000000fee00000 0x00000000feefffff msi\n"
      "0x00000000000a0000 0x00000000000bffff direct-relaxable\n"
      "garbage line\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].start, 0xfee00000u);
  EXPECT_EQ(r[0].end, 0xfeefffffu);
  EXPECT_EQ(r[0].type, "msi");
  EXPECT_EQ(r[1].type, "direct-relaxable");
}

TEST(PciConfigTest, FindsMsiAndMsixTableAndPba) {
  std::vector<uint8_t> c(256, 0);
  c[PCI_VENDOR_ID] = 0x36;
  c[PCI_VENDOR_ID + 1] = 0x1b;
  c[PCI_STATUS] = PCI_STATUS_CAP_LIST;
  c[PCI_CAPABILITY_LIST] = 0x40;
  c[0x40] = PCI_CAP_ID_MSI;
  c[0x41] = 0x50;
  c[0x42] = PCI_MSI_FLAGS_64BIT | 0x4;  // 4 vectors (MMC = 2)
  c[0x50] = PCI_CAP_ID_MSIX;
  c[0x51] = 0x00;
  c[0x52] = 63;    // 64 entries
  c[0x54] = 0x04;  // table BIR 4, offset 0
  c[0x58] = 0x04;  // PBA BIR 4 ...
  c[0x59] = 0x08;  // ... at 0x800
  auto s = ParsePciConfig(c);
  EXPECT_EQ(s.vendor_id, 0x1b36);
  ASSERT_EQ(s.capabilities.size(), 2u);
  ASSERT_TRUE(s.msi);
  EXPECT_EQ(s.msi->max_vectors, 4u);
  EXPECT_TRUE(s.msi->is_64bit);
  ASSERT_TRUE(s.msix);
  EXPECT_EQ(s.msix->table_size, 64u);
  EXPECT_EQ(s.msix->table_bar, 4);
  EXPECT_EQ(s.msix->table_offset, 0u);
  EXPECT_EQ(s.msix->pba_bar, 4);
  EXPECT_EQ(s.msix->pba_offset, 0x800u);
  EXPECT_EQ(s.msix->table_bytes(), 1024u);
  EXPECT_EQ(s.msix->pba_bytes(), 8u);
}

TEST(PciConfigTest, LoopingCapabilityListEnds) {
  std::vector<uint8_t> c(256, 0);
  c[PCI_STATUS] = PCI_STATUS_CAP_LIST;
  c[PCI_CAPABILITY_LIST] = 0x40;
  c[0x40] = PCI_CAP_ID_PM;
  c[0x41] = 0x40;  // points at itself
  EXPECT_EQ(ParsePciConfig(c).capabilities.size(), 1u);
}

}  // namespace
}  // namespace devpass::vfio
