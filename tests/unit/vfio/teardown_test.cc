// RAII: whatever order the objects are created in, the kernel objects go
// away in reverse setup order: DMA unmapped, BAR unmapped, interrupts off,
// device fd closed, group detached and closed, container closed last.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/vfio.h>
#include <sys/mman.h>

#include "vfio/container.h"
#include "vfio/dma.h"
#include "vfio_test_env.h"

namespace devpass::vfio {
namespace {

using ::testing::ElementsAre;

constexpr char kEdu[] = "0000:00:03.0";

std::vector<std::string> TeardownCalls(const std::vector<std::string>& log,
                                       size_t from) {
  std::vector<std::string> out(log.begin() + static_cast<long>(from),
                               log.end());
  return out;
}

TEST(TeardownTest, ReverseOrderOfSetup) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  void* buf = ::mmap(nullptr, 0x2000, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  size_t mark = 0;
  {
    auto session = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
    ASSERT_TRUE(session);
    auto bar0 = session->device.MapRegion(VFIO_PCI_BAR0_REGION_INDEX);
    ASSERT_TRUE(bar0);
    auto dma = DmaMapping::Map(session->container, buf, 0x100000, 0x2000);
    ASSERT_TRUE(dma);
    auto efd = EventFd::Create();
    const int fds[] = {efd->fd()};
    ASSERT_TRUE(session->device.EnableVectors(VFIO_PCI_MSI_IRQ_INDEX, fds));
    mark = env.api->log.size();
  }
  EXPECT_THAT(TeardownCalls(env.api->log, mark),
              ElementsAre("UNMAP_DMA 100 iova=0x100000 size=0x2000",
                          "MUNMAP len=0x100000",
                          "SET_IRQS 102 index=1 start=0 count=0 flags=0x21",
                          "close 102", "GROUP_UNSET_CONTAINER 101", "close 101",
                          "close 100"));
  EXPECT_EQ(env.api->open_fds(), 0u);
  ::munmap(buf, 0x2000);
}

TEST(TeardownTest, ContainerOutlivesItsHandleWhileGroupsOrMappingsExist) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  auto container = Container::Open(env.api, env.root());
  ASSERT_TRUE(container);
  auto device = (*container)->OpenDevice(Addr(kEdu));
  ASSERT_TRUE(device);
  container->reset();  // the user's handle goes first...
  EXPECT_TRUE(env.api->Calls("close").empty())
      << "...but the group still needs the container";
  size_t mark = env.api->log.size();
  { Device gone = std::move(*device); }
  EXPECT_THAT(TeardownCalls(env.api->log, mark),
              ElementsAre("close 102", "GROUP_UNSET_CONTAINER 101", "close 101",
                          "close 100"));
}

TEST(TeardownTest, FailedSetupLeavesNothingOpen) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  env.api->FailNext("DEVICE_GET_INFO", EIO);
  auto s = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
  ASSERT_FALSE(s);
  EXPECT_EQ(env.api->open_fds(), 0u);
  EXPECT_EQ(env.api->Calls("close").size(), 3u);
}

}  // namespace
}  // namespace devpass::vfio
