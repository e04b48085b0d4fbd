// Device: regions (sparse mmap areas, MSI-X mappable, type caps), config
// space, mmap, interrupts (INTx with unmask eventfd, MSI, MSI-X growth under
// NORESIZE and dynamic), reset and hot-reset info.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "vfio/container.h"
#include "vfio_test_env.h"

namespace devpass::vfio {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kEdu[] = "0000:00:03.0";
constexpr char kNvme[] = "0000:01:00.0";

class DeviceTest : public ::testing::Test {
 protected:
  Device& Open(const std::string& bdf, FakeDeviceSpec spec, int group = 7) {
    env_.AddHidden(bdf, group, std::move(spec));
    auto s = OpenVfioDevice(env_.api, env_.root(), Addr(bdf));
    EXPECT_TRUE(s) << s.error().ToString();
    session_.emplace(std::move(*s));
    return session_->device;
  }
  EventFd NewEventFd() { return *EventFd::Create(); }

  VfioTestEnv env_;
  std::optional<VfioSession> session_;
};

TEST_F(DeviceTest, RegionsCarryTheirCapabilities) {
  Device& dev = Open(kNvme, FakeMsixDevice(kNvme));
  ASSERT_EQ(dev.regions().size(), 10u);
  const RegionInfo* bar0 = dev.region(VFIO_PCI_BAR0_REGION_INDEX);
  ASSERT_TRUE(bar0 && bar0->sparse_areas);
  EXPECT_EQ(bar0->sparse_areas->size(), 2u);
  EXPECT_EQ((*bar0->sparse_areas)[1].offset, 0x3000u);
  EXPECT_TRUE(dev.region(VFIO_PCI_BAR2_REGION_INDEX)->msix_mappable);
  ASSERT_TRUE(dev.region(9)->type);
  EXPECT_EQ(dev.region(9)->type->subtype, 1u);
  EXPECT_EQ(RegionName(0), "BAR0");
  EXPECT_EQ(RegionName(VFIO_PCI_CONFIG_REGION_INDEX), "CONFIG");
  EXPECT_EQ(RegionName(9), "REGION9");
  EXPECT_EQ(IrqName(VFIO_PCI_MSIX_IRQ_INDEX), "MSI-X");
  EXPECT_TRUE(dev.supports_reset());
  EXPECT_TRUE(dev.is_pci());
}

TEST_F(DeviceTest, ConfigSpaceReadsAndWritesThroughTheConfigRegion) {
  Device& dev = Open(kEdu, FakeEduDevice(kEdu));
  EXPECT_EQ(*dev.ReadConfig16(PCI_VENDOR_ID), 0x1234);
  EXPECT_EQ(*dev.ReadConfig16(PCI_DEVICE_ID), 0x11e8);
  ASSERT_TRUE(
      dev.WriteConfig16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
  EXPECT_EQ(
      env_.api->RegionData(kEdu, VFIO_PCI_CONFIG_REGION_INDEX)[PCI_COMMAND],
      0x06);
  EXPECT_EQ(*dev.ReadConfig32(0), 0x11e81234u);
  auto beyond = dev.ReadConfig32(0x100);  // edu has 256 bytes of config space
  ASSERT_FALSE(beyond);
  EXPECT_THAT(beyond.error().message, HasSubstr("CONFIG"));
  EXPECT_EQ(dev.ReadConfigSpace()->size(), 256u);
}

TEST_F(DeviceTest, MapsAWholeBarAndAccessesRegisters) {
  Device& dev = Open(kEdu, FakeEduDevice(kEdu));
  auto bar0 = dev.MapRegion(VFIO_PCI_BAR0_REGION_INDEX);
  ASSERT_TRUE(bar0) << bar0.error().ToString();
  EXPECT_EQ(bar0->size(), 1u << 20);
  EXPECT_EQ(bar0->Read32(0), 0x010000edu);
  bar0->Write32(4, 0x12345678);
  EXPECT_EQ(env_.api->RegionData(kEdu, 0)[4], 0x78);
  auto none = dev.MapRegion(VFIO_PCI_BAR1_REGION_INDEX);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  auto config = dev.MapRegion(VFIO_PCI_CONFIG_REGION_INDEX);
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr("cannot be mmapped"));
}

TEST_F(DeviceTest, SparseAreasLimitWhatCanBeMapped) {
  Device& dev = Open(kNvme, FakeMsixDevice(kNvme));
  auto whole = dev.MapRegion(VFIO_PCI_BAR0_REGION_INDEX);
  ASSERT_FALSE(whole);
  EXPECT_THAT(whole.error().message, HasSubstr("2 separate areas"));
  auto table = dev.MapRegion(VFIO_PCI_BAR0_REGION_INDEX, 0x2000, 0x1000);
  ASSERT_FALSE(table);
  EXPECT_THAT(table.error().message, HasSubstr("0x0+0x2000, 0x3000+0x1000"));
  EXPECT_THAT(table.error().message, HasSubstr("MSI-X table"));
  auto regs = dev.MapRegion(VFIO_PCI_BAR0_REGION_INDEX, 0x0, 0x2000);
  ASSERT_TRUE(regs) << regs.error().ToString();
  auto pba = dev.MapRegion(VFIO_PCI_BAR0_REGION_INDEX, 0x3000, 0x1000);
  ASSERT_TRUE(pba);
  // The table page is still reachable with pread/pwrite.
  uint32_t word = 0xdeadbeef;
  ASSERT_TRUE(
      dev.WriteRegion(0, 0x2000, {reinterpret_cast<uint8_t*>(&word), 4}));
  uint32_t back = 0;
  ASSERT_TRUE(
      dev.ReadRegion(0, 0x2000, {reinterpret_cast<uint8_t*>(&back), 4}));
  EXPECT_EQ(back, 0xdeadbeefu);
}

TEST_F(DeviceTest, IntxWithUnmaskEventfdAndManualUnmask) {
  Device& dev = Open(kEdu, FakeEduDevice(kEdu));
  EventFd trigger = NewEventFd();
  EventFd unmask = NewEventFd();
  ASSERT_TRUE(dev.EnableIntx(trigger.fd(), unmask.fd()));
  ASSERT_EQ(env_.api->irq_sets.size(), 2u);
  const IrqSet& t = env_.api->irq_sets[0];
  EXPECT_EQ(t.index, static_cast<uint32_t>(VFIO_PCI_INTX_IRQ_INDEX));
  EXPECT_EQ(t.flags, static_cast<uint32_t>(VFIO_IRQ_SET_DATA_EVENTFD |
                                           VFIO_IRQ_SET_ACTION_TRIGGER));
  EXPECT_THAT(t.eventfds, ElementsAre(trigger.fd()));
  const IrqSet& u = env_.api->irq_sets[1];
  EXPECT_EQ(u.flags, static_cast<uint32_t>(VFIO_IRQ_SET_DATA_EVENTFD |
                                           VFIO_IRQ_SET_ACTION_UNMASK));
  EXPECT_THAT(u.eventfds, ElementsAre(unmask.fd()));

  ASSERT_TRUE(env_.api->FireIrq(kEdu, VFIO_PCI_INTX_IRQ_INDEX));
  EXPECT_EQ(*trigger.Consume(), 1u);
  EXPECT_TRUE(env_.api->intx_masked(kEdu));
  EXPECT_FALSE(env_.api->FireIrq(kEdu, VFIO_PCI_INTX_IRQ_INDEX))
      << "masked until unmasked";
  ASSERT_TRUE(dev.UnmaskIntx());
  EXPECT_EQ(env_.api->irq_sets.back().flags,
            static_cast<uint32_t>(VFIO_IRQ_SET_DATA_NONE |
                                  VFIO_IRQ_SET_ACTION_UNMASK));
  EXPECT_TRUE(env_.api->FireIrq(kEdu, VFIO_PCI_INTX_IRQ_INDEX));
  ASSERT_TRUE(dev.MaskIntx());
  EXPECT_TRUE(env_.api->intx_masked(kEdu));
}

TEST_F(DeviceTest, MsiReplacesIntxAndSignalsItsEventfd) {
  Device& dev = Open(kEdu, FakeEduDevice(kEdu));
  EventFd intx = NewEventFd();
  EventFd msi = NewEventFd();
  ASSERT_TRUE(dev.EnableIntx(intx.fd()));
  const int fds[] = {msi.fd()};
  ASSERT_TRUE(dev.EnableVectors(VFIO_PCI_MSI_IRQ_INDEX, fds));
  // INTx was disabled first: the kernel refuses two kinds at once.
  EXPECT_THAT(env_.api->Calls("SET_IRQS"),
              ElementsAre("SET_IRQS 102 index=0 start=0 count=1 flags=0x24",
                          "SET_IRQS 102 index=0 start=0 count=0 flags=0x21",
                          "SET_IRQS 102 index=1 start=0 count=1 flags=0x24"));
  EXPECT_EQ(dev.enabled_vectors(VFIO_PCI_INTX_IRQ_INDEX), 0u);
  EXPECT_EQ(dev.enabled_vectors(VFIO_PCI_MSI_IRQ_INDEX), 1u);
  ASSERT_TRUE(env_.api->FireIrq(kEdu, VFIO_PCI_MSI_IRQ_INDEX, 0));
  EXPECT_EQ(*msi.Wait(std::chrono::milliseconds(100)), 1u);
  const int too_many[] = {msi.fd(), msi.fd()};
  auto r = dev.EnableVectors(VFIO_PCI_MSI_IRQ_INDEX, too_many);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("has 1 MSI vectors"));
}

TEST_F(DeviceTest, MsixVectorGrowthUnderNoresizeReenablesTheBlock) {
  Device& dev = Open(kNvme, FakeMsixDevice(kNvme, 8, /*msix_noresize=*/true));
  EventFd a = NewEventFd(), b = NewEventFd(), c = NewEventFd();
  ASSERT_TRUE(dev.SetVector(VFIO_PCI_MSIX_IRQ_INDEX, 0, a.fd()));
  ASSERT_TRUE(
      dev.SetVector(VFIO_PCI_MSIX_IRQ_INDEX, 2, b.fd()));  // grows: 1 -> 3
  ASSERT_TRUE(
      dev.SetVector(VFIO_PCI_MSIX_IRQ_INDEX, 1, c.fd()));  // inside: in place
  ASSERT_TRUE(
      dev.SetVector(VFIO_PCI_MSIX_IRQ_INDEX, 0, -1));  // detach vector 0
  EXPECT_THAT(env_.api->Calls("SET_IRQS"),
              ElementsAre("SET_IRQS 102 index=2 start=0 count=1 flags=0x24",
                          "SET_IRQS 102 index=2 start=0 count=0 flags=0x21",
                          "SET_IRQS 102 index=2 start=0 count=3 flags=0x24",
                          "SET_IRQS 102 index=2 start=1 count=1 flags=0x24",
                          "SET_IRQS 102 index=2 start=0 count=1 flags=0x24"));
  const IrqSet& regrown = env_.api->irq_sets[2];
  EXPECT_THAT(regrown.eventfds, ElementsAre(a.fd(), -1, b.fd()));
  EXPECT_THAT(env_.api->EnabledVectors(kNvme, VFIO_PCI_MSIX_IRQ_INDEX),
              ElementsAre(-1, c.fd(), b.fd()));
  EXPECT_EQ(dev.enabled_vectors(VFIO_PCI_MSIX_IRQ_INDEX), 3u);
  ASSERT_TRUE(env_.api->FireIrq(kNvme, VFIO_PCI_MSIX_IRQ_INDEX, 2));
  EXPECT_EQ(*b.Consume(), 1u);
  auto beyond = dev.SetVector(VFIO_PCI_MSIX_IRQ_INDEX, 8, a.fd());
  ASSERT_FALSE(beyond);
  EXPECT_THAT(beyond.error().message, HasSubstr("vector 8 does not exist"));
}

TEST_F(DeviceTest, MsixVectorGrowthWithDynamicAllocationStaysInPlace) {
  Device& dev = Open(kNvme, FakeMsixDevice(kNvme, 8, /*msix_noresize=*/false));
  EventFd a = NewEventFd(), b = NewEventFd();
  ASSERT_TRUE(dev.SetVector(VFIO_PCI_MSIX_IRQ_INDEX, 0, a.fd()));
  ASSERT_TRUE(dev.SetVector(VFIO_PCI_MSIX_IRQ_INDEX, 5, b.fd()));
  EXPECT_THAT(env_.api->Calls("SET_IRQS"),
              ElementsAre("SET_IRQS 102 index=2 start=0 count=1 flags=0x24",
                          "SET_IRQS 102 index=2 start=5 count=1 flags=0x24"));
  EXPECT_EQ(dev.enabled_vectors(VFIO_PCI_MSIX_IRQ_INDEX), 6u);
}

TEST_F(DeviceTest, EnableVectorsWithANewCountReallocates) {
  Device& dev = Open(kNvme, FakeMsixDevice(kNvme, 8));
  EventFd a = NewEventFd(), b = NewEventFd();
  const int two[] = {a.fd(), b.fd()};
  const int one[] = {b.fd()};
  ASSERT_TRUE(dev.EnableVectors(VFIO_PCI_MSIX_IRQ_INDEX, two));
  ASSERT_TRUE(dev.EnableVectors(VFIO_PCI_MSIX_IRQ_INDEX, one));
  EXPECT_THAT(env_.api->Calls("SET_IRQS"),
              ElementsAre("SET_IRQS 102 index=2 start=0 count=2 flags=0x24",
                          "SET_IRQS 102 index=2 start=0 count=0 flags=0x21",
                          "SET_IRQS 102 index=2 start=0 count=1 flags=0x24"));
  ASSERT_TRUE(dev.DisableIrqs(VFIO_PCI_MSIX_IRQ_INDEX));
  EXPECT_TRUE(env_.api->EnabledVectors(kNvme, VFIO_PCI_MSIX_IRQ_INDEX).empty());
}

TEST_F(DeviceTest, ErrAndReqIndexesUseEventfdsToo) {
  Device& dev = Open(kNvme, FakeMsixDevice(kNvme));
  EventFd err = NewEventFd();
  const int fds[] = {err.fd()};
  ASSERT_TRUE(dev.EnableVectors(VFIO_PCI_ERR_IRQ_INDEX, fds));
  ASSERT_TRUE(dev.EnableVectors(VFIO_PCI_REQ_IRQ_INDEX, fds));
  EXPECT_EQ(dev.enabled_vectors(VFIO_PCI_ERR_IRQ_INDEX), 1u);
  auto msi =
      dev.EnableVectors(VFIO_PCI_MSI_IRQ_INDEX, fds);  // it has MSI-X only
  ASSERT_FALSE(msi);
  EXPECT_THAT(msi.error().message, HasSubstr("has no MSI interrupts"));
}

TEST_F(DeviceTest, ResetOnEduSaysNoReset) {
  Device& dev = Open(kEdu, FakeEduDevice(kEdu));
  EXPECT_FALSE(dev.supports_reset());
  auto r = dev.Reset();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(r.error().sys_errno, EINVAL);
  EXPECT_THAT(r.error().message, HasSubstr("no reset"));
  auto hot = dev.GetHotResetInfo();
  ASSERT_FALSE(hot);
  EXPECT_EQ(hot.error().code, ErrorCode::kUnsupported);
}

TEST_F(DeviceTest, ResetAndHotResetInfoWhenSupported) {
  FakeDeviceSpec spec = FakeMsixDevice(kNvme, 8, true, "0000:01:00.1");
  Device& dev = Open(kNvme, spec);
  EXPECT_TRUE(dev.Reset());
  auto hot = dev.GetHotResetInfo();
  ASSERT_TRUE(hot);
  ASSERT_EQ(hot->devices.size(), 2u);
  EXPECT_EQ(hot->devices[0].group_id, 7u);
  EXPECT_EQ(hot->devices[1].devfn, 1);
  env_.api->FailNext("RESET", EIO);
  auto failed = dev.Reset();
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().code, ErrorCode::kUnsupported);
}

TEST(EventFdTest, SignalWaitConsume) {
  auto e = EventFd::Create();
  ASSERT_TRUE(e);
  EXPECT_EQ(*e->Consume(), 0u);
  EXPECT_EQ(*e->Wait(std::chrono::milliseconds(1)), 0u);
  ASSERT_TRUE(e->Signal(3));
  EXPECT_EQ(*e->Wait(std::chrono::milliseconds(100)), 3u);
  EXPECT_EQ(*e->Consume(), 0u);
}

}  // namespace
}  // namespace devpass::vfio
