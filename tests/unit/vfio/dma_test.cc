// DmaMapping: map/unmap through the container, the range checks (IOVA
// ranges, reserved regions, alignment) and the kernel's ENOMEM explained.

#include "vfio/dma.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/vfio.h>
#include <sys/mman.h>

#include "vfio/container.h"
#include "vfio_test_env.h"

namespace devpass::vfio {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kEdu[] = "0000:00:03.0";

class DmaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
    env_.SetReservedRegions(7, "0x00000000fee00000 0x00000000feefffff msi\n");
    auto s = OpenVfioDevice(env_.api, env_.root(), Addr(kEdu));
    ASSERT_TRUE(s) << s.error().ToString();
    session_.emplace(std::move(*s));
    buffer_ = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(buffer_, MAP_FAILED);
  }
  void TearDown() override { ::munmap(buffer_, kSize); }

  static constexpr uint64_t kSize = 0x4000;
  VfioTestEnv env_;
  std::optional<VfioSession> session_;
  void* buffer_ = nullptr;
};

TEST_F(DmaTest, MapsAndUnmapsOnDestruction) {
  {
    auto m = DmaMapping::Map(session_->container, buffer_, 0x100000, kSize);
    ASSERT_TRUE(m) << m.error().ToString();
    EXPECT_EQ(m->iova(), 0x100000u);
    ASSERT_EQ(env_.api->dma_maps.size(), 1u);
    EXPECT_EQ(env_.api->dma_maps[0].vaddr,
              reinterpret_cast<uintptr_t>(buffer_));
    EXPECT_EQ(env_.api->dma_maps[0].flags,
              static_cast<uint32_t>(VFIO_DMA_MAP_FLAG_READ |
                                    VFIO_DMA_MAP_FLAG_WRITE));
    EXPECT_EQ(session_->container->mapped_bytes(), kSize);
  }
  EXPECT_THAT(env_.api->Calls("UNMAP_DMA"),
              ElementsAre("UNMAP_DMA 100 iova=0x100000 size=0x4000"));
  EXPECT_TRUE(env_.api->live_dma.empty());
  EXPECT_EQ(session_->container->mapped_bytes(), 0u);
}

TEST_F(DmaTest, ReadOnlyMappingForDeviceReads) {
  auto m = DmaMapping::Map(session_->container, buffer_, 0x200000, kSize,
                           DmaMapping::kRead);
  ASSERT_TRUE(m);
  EXPECT_EQ(env_.api->dma_maps.back().flags,
            static_cast<uint32_t>(VFIO_DMA_MAP_FLAG_READ));
}

TEST_F(DmaTest, RefusesIovasInsideReservedRegions) {
  auto m =
      DmaMapping::Map(session_->container, buffer_, 0xfee00000 - 0x1000, kSize);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, ErrorCode::kInvalidArgument);
  EXPECT_THAT(m.error().message,
              HasSubstr("reserved region 0xfee00000-0xfeefffff (msi)"));
  EXPECT_TRUE(env_.api->dma_maps.empty()) << "refused before asking the kernel";
}

TEST_F(DmaTest, RefusesIovasOutsideTheIommuRanges) {
  auto m =
      DmaMapping::Map(session_->container, buffer_, 0x1000000000000, kSize);
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message,
              HasSubstr("outside the ranges the IOMMU can translate"));
  EXPECT_THAT(m.error().message, HasSubstr("0x0-0xfedfffff"));
  EXPECT_TRUE(env_.api->dma_maps.empty());
}

TEST_F(DmaTest, RefusesUnalignedOrEmptyMappings) {
  auto unaligned =
      DmaMapping::Map(session_->container, buffer_, 0x100800, kSize);
  ASSERT_FALSE(unaligned);
  EXPECT_THAT(unaligned.error().message, HasSubstr("IOMMU page size 0x1000"));
  auto empty = DmaMapping::Map(session_->container, buffer_, 0x100000, 0);
  ASSERT_FALSE(empty);
}

TEST_F(DmaTest, EnomemExplainsTheMemlockLimit) {
  env_.api->memlock_limit = 8 << 20;
  env_.api->FailNext("MAP_DMA", ENOMEM);
  auto m = DmaMapping::Map(session_->container, buffer_, 0x100000, kSize);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().sys_errno, ENOMEM);
  EXPECT_THAT(m.error().message,
              HasSubstr("needs 1 MiB locked, limit is 8 MiB"));
  EXPECT_THAT(m.error().message, HasSubstr("`ulimit -l`"));
  EXPECT_THAT(m.error().message, HasSubstr("LimitMEMLOCK="));
}

TEST_F(DmaTest, EnomemCountsWhatIsAlreadyMapped) {
  env_.api->memlock_limit = 1 << 20;
  // 1 MiB of address space is enough to map twice (the fake never touches it).
  void* big =
      ::mmap(nullptr, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  auto first = DmaMapping::Map(session_->container, big, 0x0, 1 << 20);
  ASSERT_TRUE(first) << first.error().ToString();
  auto second = DmaMapping::Map(session_->container, big, 0x400000, 1 << 20);
  ASSERT_FALSE(second);
  EXPECT_THAT(second.error().message,
              HasSubstr("needs 2 MiB locked, limit is 1 MiB"));
  first->Reset();
  ::munmap(big, 1 << 20);
}

TEST_F(DmaTest, EnomemWithNoEntriesLeftBlamesDmaEntryLimit) {
  env_.api->iommu_info.dma_avail = 0;
  env_.api->FailNext("MAP_DMA", ENOMEM);
  auto m = DmaMapping::Map(session_->container, buffer_, 0x100000, kSize);
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message, HasSubstr("dma_entry_limit"));
}

TEST_F(DmaTest, OverlapIsExplained) {
  auto a = DmaMapping::Map(session_->container, buffer_, 0x100000, kSize);
  ASSERT_TRUE(a);
  auto b = DmaMapping::Map(session_->container, buffer_, 0x102000, kSize);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kConflict);
  EXPECT_THAT(b.error().message, HasSubstr("overlaps an existing DMA mapping"));
}

TEST_F(DmaTest, MappingOutlivingTheDeviceDoesNotUnmapTwice) {
  auto m = DmaMapping::Map(session_->container, buffer_, 0x100000, kSize);
  ASSERT_TRUE(m);
  session_.reset();  // closes device, group (IOMMU dropped with its mappings)
  EXPECT_TRUE(env_.api->live_dma.empty());
  m->Reset();
  EXPECT_TRUE(env_.api->Calls("UNMAP_DMA").empty());
}

TEST(DmaNoDeviceTest, MapBeforeAnyDeviceIsRefused) {
  VfioTestEnv env;
  auto c = Container::Open(env.api, env.root());
  ASSERT_TRUE(c);
  static char page[4096] __attribute__((aligned(4096)));
  auto m = DmaMapping::Map(*c, page, 0x100000, 4096);
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message, HasSubstr("open a device before mapping DMA"));
}

}  // namespace
}  // namespace devpass::vfio
