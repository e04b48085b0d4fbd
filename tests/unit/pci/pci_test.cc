// Guest-side PCI: the address-space range map and configuration mechanism #1
// through ports 0xCF8/0xCFC (PCI Local Bus 3.0 §3.2.2.3.2).

#include <gtest/gtest.h>

#include <vector>

#include "pci/address_space.h"
#include "pci/host_bridge.h"
#include "pci/pci_bus.h"

namespace devpass::pci {
namespace {

class Recorder : public IoHandler {
 public:
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    reads.push_back(offset);
    StoreLe(data, 0x1000 + offset);
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, LoadLe(data)});
  }
  std::vector<uint64_t> reads;
  std::vector<std::pair<uint64_t, uint64_t>> writes;
};

TEST(AddressSpace, DispatchesWithOffsetsRelativeToTheRange) {
  AddressSpace space("I/O port");
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(space.Add(0x3f8, 8, dev, "uart"));
  uint8_t b[2];
  EXPECT_TRUE(space.Read(0x3fd, b));
  EXPECT_EQ(dev->reads.back(), 5u);
  EXPECT_EQ(LoadLe(b), 0x1005u);
  uint8_t w[1] = {0x41};
  EXPECT_TRUE(space.Write(0x3f8, w));
  ASSERT_EQ(dev->writes.size(), 1u);
  EXPECT_EQ(dev->writes[0], (std::pair<uint64_t, uint64_t>{0, 0x41}));
}

TEST(AddressSpace, UnmappedReadsAllOnesAndWritesAreDropped) {
  AddressSpace space("MMIO");
  uint8_t d[4] = {0, 0, 0, 0};
  EXPECT_FALSE(space.Read(0x1234, d));
  EXPECT_EQ(LoadLe(d), 0xffffffffu);
  EXPECT_FALSE(space.Write(0x1234, d));
}

TEST(AddressSpace, RejectsOverlapsOnEitherSideAndEmptyRanges) {
  AddressSpace space("I/O port");
  auto dev = std::make_shared<Recorder>();
  ASSERT_TRUE(space.Add(0x100, 0x10, dev, "a"));
  auto before = space.Add(0xf8, 0x9, dev, "b");  // ends at 0x100
  ASSERT_FALSE(before);
  EXPECT_EQ(before.error().code, ErrorCode::kConflict);
  EXPECT_NE(before.error().message.find("overlaps a at 0x100-0x10f"),
            std::string::npos)
      << before.error().message;
  EXPECT_FALSE(space.Add(0x10f, 1, dev, "c"));     // last byte
  EXPECT_FALSE(space.Add(0x0, 0x1000, dev, "d"));  // covers it
  EXPECT_FALSE(space.Add(0x200, 0, dev, "empty"));
  EXPECT_FALSE(space.Add(~0ull - 1, 4, dev, "wraps"));
  EXPECT_TRUE(space.Add(0xf8, 8, dev, "adjacent below"));
  EXPECT_TRUE(space.Add(0x110, 8, dev, "adjacent above"));
  EXPECT_EQ(space.size(), 3u);
  EXPECT_EQ(space.Find(0x110).offset, 0u);
  EXPECT_EQ(space.Find(0x118).handler, nullptr);
}

// Config access through the ports, as the guest does it.
class ConfigPorts : public ::testing::Test {
 protected:
  void SetUp() override {
    bus = std::make_shared<PciBus>();
    ASSERT_TRUE(bus->Add(0, 0, std::make_shared<HostBridge>()));
    io = std::make_unique<ConfigIo>(bus);
  }
  void OutL(uint64_t off, uint32_t v) {
    uint8_t d[4];
    StoreLe(d, v);
    io->Write(off, d);
  }
  uint64_t In(uint64_t off, size_t size) {
    uint8_t d[4];
    io->Read(off, std::span(d, size));
    return LoadLe(std::span<const uint8_t>(d, size));
  }
  static uint32_t Address(int bus, int dev, int fn, int reg) {
    return 0x80000000u | (bus << 16) | (dev << 11) | (fn << 8) | reg;
  }
  std::shared_ptr<PciBus> bus;
  std::unique_ptr<ConfigIo> io;
};

TEST_F(ConfigPorts, HostBridgeIdAndClass) {
  OutL(0, Address(0, 0, 0, 0x00));
  EXPECT_EQ(In(4, 4), (uint64_t{kHostBridgeDevice} << 16) | kHostBridgeVendor);
  OutL(0, Address(0, 0, 0, 0x08));
  EXPECT_EQ(In(4, 4) >> 8, 0x060000u);  // class: bridge / host bridge
  OutL(0, Address(0, 0, 0, 0x0c));
  EXPECT_EQ(In(6, 1), 0u);  // header type 0 at 0x0e = 0xCFC + 2
}

TEST_F(ConfigPorts, ByteAndWordAccessAtDataPortOffsets) {
  OutL(0, Address(0, 0, 0, 0x00));
  EXPECT_EQ(In(4, 2), kHostBridgeVendor);
  EXPECT_EQ(In(6, 2), kHostBridgeDevice);
  EXPECT_EQ(In(5, 1), kHostBridgeVendor >> 8);
  EXPECT_EQ(In(7, 1), kHostBridgeDevice >> 8);
}

TEST_F(ConfigPorts, AddressLatchReadsBackOnlyAsDword) {
  OutL(0, Address(0, 3, 2, 0x10) | 0x3);  // bits 1:0 are not kept
  EXPECT_EQ(In(0, 4), Address(0, 3, 2, 0x10));
  // Linux's probe: a byte write to 0xCFB must not change CONFIG_ADDRESS.
  uint8_t one[1] = {0x01};
  io->Write(3, one);
  EXPECT_EQ(io->address(), Address(0, 3, 2, 0x10));
  EXPECT_EQ(In(0, 2), 0xffffu);  // not a config cycle
}

TEST_F(ConfigPorts, EnableBitClearOrAbsentFunctionReadsAllOnes) {
  OutL(0, Address(0, 0, 0, 0) & 0x7fffffff);
  EXPECT_EQ(In(4, 4), 0xffffffffu);
  OutL(0, Address(0, 1, 0, 0));  // empty slot
  EXPECT_EQ(In(4, 4), 0xffffffffu);
  OutL(0, Address(0, 0, 1, 0));  // function 1 of the bridge
  EXPECT_EQ(In(4, 4), 0xffffffffu);
  OutL(0, Address(1, 0, 0, 0));  // bus 1 does not exist
  EXPECT_EQ(In(4, 2), 0xffffu);
  OutL(0, Address(0, 0, 0, 0) | (1u << 24));  // AMD extended register 0x100
  EXPECT_EQ(In(4, 4), 0xffffffffu);
}

TEST_F(ConfigPorts, WritesHonourTheWriteMask) {
  OutL(0, Address(0, 0, 0, 0x04));
  uint8_t cmd[2] = {0xff, 0xff};
  io->Write(4, cmd);
  EXPECT_EQ(In(4, 2), 0x46u);  // memory, master, parity writable only
  OutL(0, Address(0, 0, 0, 0x00));
  OutL(4, 0x12345678);  // vendor/device are read-only
  EXPECT_EQ(In(4, 2), kHostBridgeVendor);
}

TEST(PciBus, SlotsAreCheckedAndNotShared) {
  PciBus bus;
  EXPECT_TRUE(bus.Add(3, 0, std::make_shared<HostBridge>()));
  auto taken = bus.Add(3, 0, std::make_shared<HostBridge>());
  ASSERT_FALSE(taken);
  EXPECT_NE(taken.error().message.find("00:03.0 is already taken"),
            std::string::npos);
  EXPECT_FALSE(bus.Add(32, 0, std::make_shared<HostBridge>()));
  EXPECT_FALSE(bus.Add(0, 8, std::make_shared<HostBridge>()));
  EXPECT_NE(bus.Get(0, 3, 0), nullptr);
  EXPECT_EQ(bus.Get(1, 3, 0), nullptr);
  EXPECT_TRUE(HostBridge().Bars().empty());
}

}  // namespace
}  // namespace devpass::pci
