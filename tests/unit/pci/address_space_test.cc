// AddressSpace under run-time change: Remove, handlers that add and remove
// ranges from inside an access (a guest moving a BAR through 0xCF8/0xCFC),
// and vCPU-like threads dispatching while ranges come and go.

#include "pci/address_space.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace devpass::pci {
namespace {

// Answers every read with a fixed byte; runs `on_write` on writes.
class Fixed : public IoHandler {
 public:
  explicit Fixed(uint8_t value) : value_(value) {}
  void Read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = value_;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    if (on_write) on_write(offset, LoadLe(data));
  }
  std::function<void(uint64_t, uint64_t)> on_write;

 private:
  uint8_t value_;
};

uint8_t ReadByte(const AddressSpace& space, uint64_t address) {
  uint8_t b[1] = {0};
  space.Read(address, b);
  return b[0];
}

TEST(AddressSpaceRemove, HandsTheHandlerBackAndFreesTheRange) {
  AddressSpace space("MMIO");
  auto dev = std::make_shared<Fixed>(0x11);
  ASSERT_TRUE(space.Add(0x1000, 0x100, dev, "bar0"));
  EXPECT_EQ(ReadByte(space, 0x1080), 0x11);
  auto removed = space.Remove(0x1000);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->get(), dev.get());
  EXPECT_EQ(space.size(), 0u);
  EXPECT_EQ(ReadByte(space, 0x1080), 0xff);  // unmapped again
  ASSERT_TRUE(space.Add(0x1000, 0x100, dev, "bar0 again"));
}

TEST(AddressSpaceRemove, OnlyByTheBaseOfARange) {
  AddressSpace space("I/O port");
  ASSERT_TRUE(space.Add(0xc000, 0x20, std::make_shared<Fixed>(1), "bar4"));
  auto inside = space.Remove(0xc010);
  ASSERT_FALSE(inside);
  EXPECT_EQ(inside.error().code, ErrorCode::kNotFound);
  EXPECT_NE(inside.error().message.find("no I/O port range starts at 0xc010"),
            std::string::npos);
  EXPECT_EQ(space.size(), 1u);
}

TEST(AddressSpaceOverlap, NamesTheRangeInTheWay) {
  AddressSpace space("MMIO");
  ASSERT_TRUE(
      space.Add(0x2000, 0x1000, std::make_shared<Fixed>(1), "msix table"));
  auto o = space.FindOverlap(0x2fff, 2);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->name, "msix table");
  EXPECT_EQ(o->base, 0x2000u);
  EXPECT_EQ(o->size, 0x1000u);
  EXPECT_TRUE(space.FindOverlap(0x1000, 0x1000) ==
              std::nullopt);  // adjacent below
  EXPECT_TRUE(space.FindOverlap(0x3000, 0x1000) ==
              std::nullopt);                                  // adjacent above
  EXPECT_TRUE(space.FindOverlap(0x0, 0x10000));               // covers it
  EXPECT_TRUE(space.FindOverlap(0x2000, 0) == std::nullopt);  // empty
}

// A BAR that moves itself when the guest writes its new base, as a config
// write through 0xCFC does: the handler removes and re-adds its own range
// from inside Write, and moves a partner range in the other address space.
TEST(AddressSpaceReentry, HandlerMovesItsOwnRangeAndOneInTheOtherSpace) {
  AddressSpace pio("I/O port"), mmio("MMIO");
  auto bar = std::make_shared<Fixed>(0x22);
  auto partner = std::make_shared<Fixed>(0x33);
  uint64_t base = 0xc000;
  uint64_t mmio_base = 0xe0000000;
  ASSERT_TRUE(mmio.Add(mmio_base, 0x1000, partner, "partner"));
  std::weak_ptr<Fixed> weak = bar;
  bar->on_write = [&](uint64_t, uint64_t new_base) {
    auto self = pio.Remove(base);
    ASSERT_TRUE(self);
    ASSERT_TRUE(pio.Add(new_base, 0x10, *self, "bar"));
    base = new_base;
    auto p = mmio.Remove(mmio_base);
    ASSERT_TRUE(p);
    mmio_base += 0x10000;
    ASSERT_TRUE(mmio.Add(mmio_base, 0x1000, *p, "partner"));
  };
  ASSERT_TRUE(pio.Add(base, 0x10, bar, "bar"));
  bar.reset();  // the address space holds the only reference now
  uint8_t v[2];
  StoreLe(v, 0xd000);
  EXPECT_TRUE(pio.Write(0xc004, v));  // would deadlock if the lock were held
  EXPECT_EQ(ReadByte(pio, 0xc004), 0xff);
  EXPECT_EQ(ReadByte(pio, 0xd004), 0x22);
  EXPECT_EQ(ReadByte(mmio, 0xe0000000), 0xff);
  EXPECT_EQ(ReadByte(mmio, 0xe0010000), 0x33);
  EXPECT_FALSE(weak.expired());
  StoreLe(v, 0xd100);
  EXPECT_TRUE(pio.Write(0xd000, v));
  EXPECT_EQ(ReadByte(pio, 0xd100), 0x22);
}

TEST(AddressSpaceReentry,
     HandlerRemovesItselfAndTheLastReferenceOutlivesTheCall) {
  AddressSpace space("MMIO");
  auto dev = std::make_shared<Fixed>(0x44);
  std::weak_ptr<Fixed> weak = dev;
  bool alive_during_call = false;
  dev->on_write = [&](uint64_t, uint64_t) {
    auto self = space.Remove(0x1000);
    ASSERT_TRUE(self);
    self->reset();  // drop the reference Remove handed back
    alive_during_call = !weak.expired();  // the dispatcher still holds one
  };
  ASSERT_TRUE(space.Add(0x1000, 0x10, dev, "self-removing"));
  dev.reset();
  uint8_t b[1] = {1};
  EXPECT_TRUE(space.Write(0x1000, b));
  EXPECT_TRUE(alive_during_call);
  EXPECT_TRUE(weak.expired());  // released once the access returned
  EXPECT_EQ(space.size(), 0u);
}

// A handler whose destructor calls back into the space (a device dropping
// its registrations when the VM clears its address spaces at teardown).
class RemovesOnDestruction : public Fixed {
 public:
  RemovesOnDestruction(AddressSpace& space, uint64_t other)
      : Fixed(0), space_(space), other_(other) {}
  ~RemovesOnDestruction() override {
    result = space_.Remove(other_).has_value();
  }
  static inline bool result = true;

 private:
  AddressSpace& space_;
  uint64_t other_;
};

TEST(AddressSpaceClear, HandlersDieOutsideTheLock) {
  AddressSpace space("I/O port");
  ASSERT_TRUE(space.Add(
      0x100, 1, std::make_shared<RemovesOnDestruction>(space, 0x200), "a"));
  ASSERT_TRUE(space.Add(0x200, 1, std::make_shared<Fixed>(0), "b"));
  space.Clear();  // would deadlock if handlers were destroyed under the lock
  EXPECT_FALSE(RemovesOnDestruction::result);  // Clear took "b" already
  EXPECT_EQ(space.size(), 0u);
}

// vCPU-like readers against a thread that keeps moving a range: every read
// sees either the device or nothing (all ones), never a torn state.
TEST(AddressSpaceConcurrency, DispatchWhileRangesComeAndGo) {
  AddressSpace space("MMIO");
  auto dev = std::make_shared<Fixed>(0x5a);
  ASSERT_TRUE(
      space.Add(0x10000, 0x1000, std::make_shared<Fixed>(0x77), "fixed"));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<long> hits{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!done.load()) {
        uint8_t a = ReadByte(space, 0x20000);
        uint8_t b = ReadByte(space, 0x30000);
        if ((a != 0x5a && a != 0xff) || (b != 0x5a && b != 0xff)) ++bad;
        if (a == 0x5a || b == 0x5a) ++hits;
        if (ReadByte(space, 0x10800) != 0x77) ++bad;
        ++reads;
      }
    });
  }
  // At least 20000 moves, and on until the readers (which a 2-core machine
  // may schedule before or after the moves) found the moving range often.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < 20000 || hits.load() < 1000; ++i) {
    if (std::chrono::steady_clock::now() > deadline) break;  // fails below
    const uint64_t from = (i % 2) ? 0x30000 : 0x20000;
    const uint64_t to = (i % 2) ? 0x20000 : 0x30000;
    if (i > 0 && !space.Remove(from)) ++bad;
    if (!space.Add(to, 0x1000, dev, "moving")) ++bad;
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(hits.load(), 1000) << "reads " << reads.load();
  EXPECT_EQ(space.size(), 2u);
}

}  // namespace
}  // namespace devpass::pci
