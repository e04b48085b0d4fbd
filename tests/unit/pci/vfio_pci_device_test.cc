// The passthrough function against the fake VFIO kernel and a fake VMM:
// config space virtualization, BAR placement and mapping, the guest's
// attempts to put BARs where they must not go, MSI/MSI-X emulation and
// routing, INTx, teardown.

#include "pci/vfio_pci_device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "../vfio/vfio_test_env.h"
#include "fake_platform.h"
#include "vfio/container.h"

namespace devpass::pci {
namespace {

using ::testing::HasSubstr;
using Kind = testing::FakePlatform::Kind;

constexpr char kEdu[] = "0000:00:03.0";
constexpr char kNvme[] = "0000:01:00.0";
constexpr uint64_t kMmio32 = 0xc0000000;
constexpr uint64_t kMmio64 = 0x100000000ull;

BarWindows Windows() {
  return BarWindows{kMmio32, 0xfec00000, kMmio64, kMmio64 + (64ull << 30),
                    0xc000,  0x10000};
}

class VfioPciDeviceTest : public ::testing::Test {
 protected:
  VfioPciDevice& Make(const std::string& bdf, vfio::FakeDeviceSpec spec) {
    env_.AddHidden(bdf, 7, std::move(spec));
    auto s = vfio::OpenVfioDevice(env_.api, env_.root(), vfio::Addr(bdf));
    EXPECT_TRUE(s) << s.error().ToString();
    container_ = s->container;
    PassthroughOptions o;
    o.windows = Windows();
    o.intx_gsi = 18;
    o.log = [this](const std::string& m) { platform_.log.push_back(m); };
    auto d = VfioPciDevice::Create(std::move(s->device), platform_, o);
    EXPECT_TRUE(d) << d.error().ToString();
    dev_ = *d;
    return *dev_;
  }
  uint32_t Read32(uint16_t off) {
    std::array<uint8_t, 4> b{};
    dev_->ConfigRead(off, b);
    return static_cast<uint32_t>(LoadLe(b));
  }
  uint16_t Read16(uint16_t off) {
    std::array<uint8_t, 2> b{};
    dev_->ConfigRead(off, b);
    return static_cast<uint16_t>(LoadLe(b));
  }
  uint8_t Read8(uint16_t off) {
    std::array<uint8_t, 1> b{};
    dev_->ConfigRead(off, b);
    return b[0];
  }
  void Write32(uint16_t off, uint32_t v) {
    std::array<uint8_t, 4> b{};
    StoreLe(b, v);
    dev_->ConfigWrite(off, b);
  }
  void Write16(uint16_t off, uint16_t v) {
    std::array<uint8_t, 2> b{};
    StoreLe(b, v);
    dev_->ConfigWrite(off, b);
  }
  std::vector<uint8_t>& DeviceConfig(const std::string& bdf) {
    return env_.api->RegionData(bdf, VFIO_PCI_CONFIG_REGION_INDEX);
  }
  void Place() {
    BarAllocator alloc(Windows());
    ASSERT_TRUE(dev_->PlaceBars(alloc));
  }
  // The VFIO SET_IRQS calls for `index` that enabled eventfds (count > 0).
  std::vector<vfio::IrqSet> Enables(uint32_t index) {
    std::vector<vfio::IrqSet> out;
    for (const auto& s : env_.api->irq_sets) {
      if (s.index == index && (s.flags & VFIO_IRQ_SET_DATA_EVENTFD) &&
          (s.flags & VFIO_IRQ_SET_ACTION_TRIGGER) && s.count > 0) {
        out.push_back(s);
      }
    }
    return out;
  }
  void TableWrite(uint64_t gpa, uint32_t value) {
    auto [h, off] = platform_.TrapAt(gpa);
    ASSERT_NE(h, nullptr) << std::hex << gpa;
    std::array<uint8_t, 4> b{};
    StoreLe(b, value);
    h->Write(off, b);
  }

  vfio::VfioTestEnv env_;
  std::shared_ptr<vfio::Container> container_;
  testing::FakePlatform platform_;
  std::shared_ptr<VfioPciDevice> dev_;
};

TEST_F(VfioPciDeviceTest, IdentityComesFromTheDeviceAndTheHeaderIsOurs) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  EXPECT_EQ(Read32(PCI_VENDOR_ID), 0x11e81234u);
  EXPECT_EQ(Read8(PCI_HEADER_TYPE), 0);
  EXPECT_EQ(Read32(PCI_ROM_ADDRESS), 0u);  // no ROM to map
  Write32(PCI_ROM_ADDRESS, 0xffffffff);
  EXPECT_EQ(Read32(PCI_ROM_ADDRESS), 0u);
  EXPECT_EQ(Read8(PCI_INTERRUPT_PIN), 1);
  Write32(PCI_INTERRUPT_LINE, 0xff00000b);  // pin is read-only
  EXPECT_EQ(Read8(PCI_INTERRUPT_LINE), 0x0b);
  EXPECT_EQ(Read8(PCI_INTERRUPT_PIN), 1);
}

TEST_F(VfioPciDeviceTest, BarSizingAnswersTheRegionSize) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  Write32(PCI_BASE_ADDRESS_0, 0xffffffff);
  EXPECT_EQ(Read32(PCI_BASE_ADDRESS_0), 0xfff00000u);  // 1 MiB, 32-bit memory
  Write32(PCI_BASE_ADDRESS_1, 0xffffffff);
  EXPECT_EQ(Read32(PCI_BASE_ADDRESS_1), 0u);  // unimplemented
  ASSERT_EQ(dev_->Bars().size(), 1u);
  EXPECT_EQ(dev_->Bars()[0].size, 1u << 20);
}

TEST_F(VfioPciDeviceTest, DecodeOnMapsTheBarStraightIntoTheGuest) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  Place();
  EXPECT_EQ(dev_->BarAddress(0), kMmio32);
  EXPECT_TRUE(platform_.Of(Kind::kMemory).empty());  // decode still off
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  auto mem = platform_.Of(Kind::kMemory);
  ASSERT_EQ(mem.size(), 1u);
  EXPECT_EQ(mem[0].base, kMmio32);
  EXPECT_EQ(mem[0].size, 1u << 20);
  EXPECT_TRUE(platform_.Of(Kind::kMmio).empty());  // nothing traps
  // Bus master reaches the device; the guest's view shows what it wrote.
  EXPECT_EQ(DeviceConfig(kEdu)[PCI_COMMAND],
            PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  EXPECT_EQ(Read16(PCI_COMMAND), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  Write16(PCI_COMMAND, 0);
  EXPECT_TRUE(platform_.Of(Kind::kMemory).empty());
  EXPECT_FALSE(dev_->BarLive(0));
}

TEST_F(VfioPciDeviceTest, MovingABarWhileDecodingRemapsIt) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  Place();
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY);
  Write32(PCI_BASE_ADDRESS_0, 0xd0000000);
  auto mem = platform_.Of(Kind::kMemory);
  ASSERT_EQ(mem.size(), 1u);
  EXPECT_EQ(mem[0].base, 0xd0000000u);
  EXPECT_EQ(dev_->stats().bar_remaps, 2u);
}

TEST_F(VfioPciDeviceTest, ABarMovedOntoGuestRamIsNotMapped) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  Place();
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY);
  Write32(PCI_BASE_ADDRESS_0,
          0x01000000);  // 16 MiB: guest RAM, outside the windows
  EXPECT_TRUE(platform_.Of(Kind::kMemory).empty());
  EXPECT_FALSE(dev_->BarLive(0));
  EXPECT_EQ(dev_->stats().refused_bars, 1u);
  ASSERT_FALSE(platform_.log.empty());
  EXPECT_THAT(platform_.log.back(),
              HasSubstr("outside the guest's PCI windows"));
  // Back in the window: mapped again.
  Write32(PCI_BASE_ADDRESS_0, static_cast<uint32_t>(kMmio32));
  EXPECT_TRUE(dev_->BarLive(0));
}

TEST_F(VfioPciDeviceTest, ABarMovedOntoAnotherDevicesWindowIsNotMapped) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  Place();
  // Another device already holds 0xd0000000.
  auto other = platform_.MapMemory(0xd0000000, 0x1000, nullptr, "other");
  ASSERT_TRUE(other);
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY);
  Write32(PCI_BASE_ADDRESS_0, 0xd0000000);
  EXPECT_FALSE(dev_->BarLive(0));
  EXPECT_EQ(platform_.Of(Kind::kMemory).size(), 1u);  // only the other one
  EXPECT_THAT(platform_.log.back(), HasSubstr("overlaps"));
}

TEST_F(VfioPciDeviceTest, CapabilitiesKeepPmAndPcieAndUnlinkTheRest) {
  auto spec = vfio::FakeMsixDevice(kNvme);
  auto& c = spec.regions[VFIO_PCI_CONFIG_REGION_INDEX].data;
  // Chain: PM 0x40 -> MSI-X 0x50 -> PCIe 0x60 -> PCI-X 0x70 (hidden).
  c[0x61] = 0x70;
  c[0x70] = PCI_CAP_ID_PCIX;
  c[0x71] = 0;
  Make(kNvme, spec);
  EXPECT_TRUE(Read16(PCI_STATUS) & PCI_STATUS_CAP_LIST);
  std::vector<uint8_t> ids;
  for (uint8_t at = Read8(PCI_CAPABILITY_LIST); at; at = Read8(at + 1))
    ids.push_back(Read8(at));
  EXPECT_EQ(ids, (std::vector<uint8_t>{PCI_CAP_ID_PM, PCI_CAP_ID_MSIX,
                                       PCI_CAP_ID_EXP}));
  EXPECT_EQ(Read8(0x70), 0);  // the hidden one's header reads as nothing
}

TEST_F(VfioPciDeviceTest, IntxIsLiveFromTheStartWithResample) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  auto intx = platform_.Of(Kind::kIntx);
  ASSERT_EQ(intx.size(), 1u);
  EXPECT_EQ(intx[0].base, 18u);
  EXPECT_GE(intx[0].resample_fd, 0);
  EXPECT_EQ(Enables(VFIO_PCI_INTX_IRQ_INDEX).size(), 1u);
}

TEST_F(VfioPciDeviceTest, MsiEnableRoutesTheGuestsMessage) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  const uint16_t cap = 0x40;  // the edu's MSI: 64-bit, 1 vector
  Write32(cap + 4, 0xfee01000);
  Write32(cap + 8, 0);
  Write16(cap + 12, 0x4041);
  Write16(cap + 2, PCI_MSI_FLAGS_ENABLE);
  EXPECT_TRUE(platform_.Of(Kind::kIntx).empty());
  auto msi = platform_.Of(Kind::kMsi);
  ASSERT_EQ(msi.size(), 1u);
  EXPECT_EQ(msi[0].message.address, 0xfee01000u);
  EXPECT_EQ(msi[0].message.data, 0x4041u);
  ASSERT_EQ(Enables(VFIO_PCI_MSI_IRQ_INDEX).size(), 1u);
  EXPECT_EQ(Enables(VFIO_PCI_MSI_IRQ_INDEX)[0].eventfds[0], msi[0].fd);
  // The guest reads back what it wrote; the read-only bits stay.
  EXPECT_EQ(Read16(cap + 2), PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_64BIT);
  // Retarget while enabled, then disable: INTx comes back.
  Write32(cap + 4, 0xfee02000);
  EXPECT_EQ(platform_.Of(Kind::kMsi)[0].message.address, 0xfee02000u);
  Write16(cap + 2, 0);
  EXPECT_TRUE(platform_.Of(Kind::kMsi).empty());
  EXPECT_EQ(platform_.Of(Kind::kIntx).size(), 1u);
}

TEST_F(VfioPciDeviceTest, AnMsiAddressOutsideTheApicWindowIsNotRouted) {
  Make(kEdu, vfio::FakeEduDevice(kEdu));
  Write32(0x44, 0x00100000);  // guest RAM, as if to make the device write there
  Write16(0x4c, 0x1234);
  Write16(0x42, PCI_MSI_FLAGS_ENABLE);
  EXPECT_TRUE(platform_.Of(Kind::kMsi).empty());
  EXPECT_EQ(dev_->stats().refused_msi, 1u);
  EXPECT_THAT(platform_.log.back(), HasSubstr("not a local APIC address"));
}

TEST_F(VfioPciDeviceTest, MsixTableTrapsAndTheRestOfTheBarIsMapped) {
  Make(kNvme, vfio::FakeMsixDevice(kNvme, 8));
  Place();
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY);
  const uint64_t bar0 = dev_->BarAddress(0);
  auto mem = platform_.Of(Kind::kMemory);
  auto traps = platform_.Of(Kind::kMmio);
  // BAR0: registers [0, 0x2000) mapped; table and PBA pages trap even
  // though VFIO would let the PBA page be mmapped. BAR2 mapped whole.
  ASSERT_EQ(mem.size(), 2u);
  EXPECT_EQ(mem[0].base, bar0);
  EXPECT_EQ(mem[0].size, 0x2000u);
  EXPECT_EQ(mem[1].size, 0x10000u);
  ASSERT_EQ(traps.size(), 1u);
  EXPECT_EQ(traps[0].base, bar0 + 0x2000);
  EXPECT_EQ(traps[0].size, 0x2000u);
}

TEST_F(VfioPciDeviceTest, MsixVectorsFollowTheEmulatedTable) {
  Make(kNvme, vfio::FakeMsixDevice(kNvme, 8));
  Place();
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY);
  const uint64_t table = dev_->BarAddress(0) + 0x2000;
  Write16(0x52, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
  ASSERT_EQ(Enables(VFIO_PCI_MSIX_IRQ_INDEX).size(), 1u);
  EXPECT_EQ(Enables(VFIO_PCI_MSIX_IRQ_INDEX)[0].count,
            8u);                                  // all vectors at once
  EXPECT_TRUE(platform_.Of(Kind::kMsi).empty());  // everything masked
  TableWrite(table + 16 * 3 + 0, 0xfee00000);
  TableWrite(table + 16 * 3 + 8, 0x31);
  TableWrite(table + 16 * 3 + 12, 0);             // unmask vector 3
  EXPECT_TRUE(platform_.Of(Kind::kMsi).empty());  // function still masked
  Write16(0x52, PCI_MSIX_FLAGS_ENABLE);
  auto msi = platform_.Of(Kind::kMsi);
  ASSERT_EQ(msi.size(), 1u);
  EXPECT_EQ(msi[0].message.data, 0x31u);
  EXPECT_EQ(msi[0].fd, Enables(VFIO_PCI_MSIX_IRQ_INDEX)[0].eventfds[3]);
  // The guest reads its own table back, never the device's.
  auto [h, off] = platform_.TrapAt(table + 16 * 3 + 8);
  std::array<uint8_t, 4> b{};
  h->Read(off, b);
  EXPECT_EQ(LoadLe(b), 0x31u);
  // Mask: the route goes (the eventfd keeps counting); unmask: back.
  TableWrite(table + 16 * 3 + 12, 1);
  EXPECT_TRUE(platform_.Of(Kind::kMsi).empty());
  TableWrite(table + 16 * 3 + 12, 0);
  EXPECT_EQ(platform_.Of(Kind::kMsi).size(), 1u);
  // A redirect to guest RAM is refused and leaves the vector undelivered.
  TableWrite(table + 16 * 3 + 0, 0x00200000);
  EXPECT_TRUE(platform_.Of(Kind::kMsi).empty());
  EXPECT_EQ(dev_->stats().refused_msi, 1u);
}

TEST_F(VfioPciDeviceTest, ShutdownTakesEverythingAway) {
  Make(kNvme, vfio::FakeMsixDevice(kNvme, 4));
  Place();
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY);
  Write16(0x52, PCI_MSIX_FLAGS_ENABLE);
  EXPECT_FALSE(platform_.live.empty());
  dev_->Shutdown();
  EXPECT_TRUE(platform_.live.empty());
  EXPECT_EQ(dev_->device().enabled_vectors(VFIO_PCI_MSIX_IRQ_INDEX), 0u);
  Write16(PCI_COMMAND, PCI_COMMAND_MEMORY);  // after shutdown: ignored
  EXPECT_TRUE(platform_.live.empty());
}

TEST(BarAllocatorTest, NaturalAlignmentAnd64BitAbove4G) {
  BarAllocator alloc(Windows());
  VirtualBar small{{0, Bar::Kind::kMem32, 0x100, false}, 0};
  VirtualBar big{{1, Bar::Kind::kMem32, 1 << 20, false}, 1};
  VirtualBar wide{{2, Bar::Kind::kMem64, 1ull << 30, true}, 2};
  VirtualBar io{{4, Bar::Kind::kIo, 0x20, false}, 4};
  EXPECT_EQ(*alloc.Allocate(small, "d"), kMmio32);
  EXPECT_EQ(*alloc.Allocate(big, "d"),
            kMmio32 + (1 << 20));  // page, then 1 MiB aligned
  EXPECT_EQ(*alloc.Allocate(wide, "d"), kMmio64);
  EXPECT_EQ(*alloc.Allocate(io, "d"), 0xc000u);
  VirtualBar huge{{3, Bar::Kind::kMem32, 2ull << 30, false}, 3};
  auto r = alloc.Allocate(huge, "0000:00:01.0");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("32-bit MMIO window"));
}

}  // namespace
}  // namespace devpass::pci
