// Memslots at run time: ids allocated and reused, overlaps refused with the
// other slot named before KVM sees them, slots deleted on release and at
// teardown; and the kernel rules the fake enforces for them.

#include "vmm/memslots.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include "fake_kvm.h"

namespace devpass::vmm {
namespace {

using testing::FakeKvm;

class MemslotsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kvm_fd = *kvm.OpenKvm("/dev/kvm");
    vm_fd = *kvm.CreateVm(kvm_fd.get());
    mem = ::mmap(nullptr, kMem, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
  }
  void TearDown() override { ::munmap(mem, kMem); }
  void* At(uint64_t off) { return static_cast<uint8_t*>(mem) + off; }

  static constexpr uint64_t kMem = 1 * kMiB;
  FakeKvm kvm;
  UniqueFd kvm_fd, vm_fd;
  void* mem = nullptr;
};

TEST_F(MemslotsTest, LowestFreeIdAndReuse) {
  MemslotTable table(kvm, vm_fd.get(), 509);
  auto a = table.Map(Gpa(0xc0000000), 0x10000, At(0), "bar0");
  auto b = table.Map(Gpa(0xc0010000), 0x1000, At(0x10000), "bar2");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->info().slot, 0u);
  EXPECT_EQ(b->info().slot, 1u);
  EXPECT_EQ(kvm.slots.size(), 2u);
  EXPECT_EQ(kvm.slots.at(1).guest_phys_addr, 0xc0010000u);
  EXPECT_EQ(kvm.slots.at(1).userspace_addr,
            reinterpret_cast<uint64_t>(At(0x10000)));
  a->Reset();
  EXPECT_EQ(kvm.slots.count(0), 0u);
  EXPECT_EQ(kvm.regions.back().memory_size, 0u);  // a delete
  auto c = table.Map(Gpa(0xd0000000), 0x1000, At(0x20000), "bar4");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->info().slot, 0u);
  ASSERT_EQ(table.List().size(), 2u);
  EXPECT_EQ(table.List()[0].name, "bar4");
}

TEST_F(MemslotsTest, OverlapNamesTheOtherSlotAndNeverReachesKvm) {
  MemslotTable table(kvm, vm_fd.get(), 509);
  auto a = table.Map(Gpa(0xc0000000), 0x4000, At(0), "edu BAR0");
  ASSERT_TRUE(a);
  const size_t calls = kvm.regions.size();
  auto b = table.Map(Gpa(0xc0003000), 0x2000, At(0x10000), "nvme BAR0");
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kConflict);
  EXPECT_NE(b.error().message.find(
                "nvme BAR0 at 0xc0003000-0xc0004fff overlaps edu "
                "BAR0 at 0xc0000000-0xc0003fff (KVM memory slot 0)"),
            std::string::npos)
      << b.error().message;
  EXPECT_EQ(kvm.regions.size(), calls);
  EXPECT_TRUE(table.Map(Gpa(0xc0004000), 0x1000, At(0x10000), "adjacent"));
  auto o = table.FindOverlap(Gpa(0xc0003fff), 1);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->name, "edu BAR0");
}

TEST_F(MemslotsTest, AlignmentIsCheckedWithTheNumbers) {
  MemslotTable table(kvm, vm_fd.get(), 509);
  auto r = table.Map(Gpa(0xc0000800), 0x1000, At(0), "msix gap");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("whole 4096-byte pages"), std::string::npos);
  EXPECT_FALSE(table.Map(Gpa(0xc0000000), 0x800, At(0), "small"));
  EXPECT_FALSE(table.Map(Gpa(0xc0000000), 0x1000, At(8), "host"));
  EXPECT_FALSE(table.Map(Gpa(0xc0000000), 0, At(0), "empty"));
  EXPECT_FALSE(table.Map(Gpa(~uint64_t{0} - 0xfff), 0x2000, At(0), "wraps"));
  EXPECT_TRUE(kvm.regions.empty());
}

TEST_F(MemslotsTest, RunsOutOfSlotsWithANumber) {
  kvm.caps[KVM_CAP_NR_MEMSLOTS] = 2;
  MemslotTable table(kvm, vm_fd.get(), 2);
  auto a = table.Map(Gpa(0x100000000), 0x1000, At(0), "a");
  auto b = table.Map(Gpa(0x100001000), 0x1000, At(0), "b");
  ASSERT_TRUE(a && b);
  auto c = table.Map(Gpa(0x100002000), 0x1000, At(0), "c");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kBusy);
  EXPECT_NE(c.error().message.find("all 2 KVM memory slots are in use"),
            std::string::npos);
}

TEST_F(MemslotsTest, KernelRefusalHasContextAndLeavesNothing) {
  MemslotTable table(kvm, vm_fd.get(), 509);
  kvm.fail_memslot_errno = ENOMEM;
  auto r = table.Map(Gpa(0xc0000000), 0x1000, At(0), "bar0");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, ENOMEM);
  EXPECT_NE(r.error().message.find("cannot map bar0 at guest-physical "
                                   "0xc0000000-0xc0000fff"),
            std::string::npos);
  EXPECT_TRUE(table.List().empty());
}

TEST_F(MemslotsTest, TeardownDeletesWhatIsLeftAndHandlesThenDoNothing) {
  auto table = std::make_unique<MemslotTable>(kvm, vm_fd.get(), 509);
  auto a = table->Map(Gpa(0xc0000000), 0x1000, At(0), "a");
  auto b = table->Map(Gpa(0xc0001000), 0x1000, At(0), "b");
  ASSERT_TRUE(a && b);
  table.reset();
  EXPECT_TRUE(kvm.slots.empty());
  const size_t calls = kvm.regions.size();
  a->Reset();
  MemslotTable::Slot moved = std::move(*b);
  moved.Reset();
  EXPECT_EQ(kvm.regions.size(), calls);  // no delete of an absent slot (EINVAL)
}

// The kernel's rules as the fake plays them (__kvm_set_memory_region).
TEST_F(MemslotsTest, FakeKvmEnforcesTheKernelsMemslotRules) {
  auto region = [&](uint32_t slot, uint64_t gpa, uint64_t size) {
    kvm_userspace_memory_region r{};
    r.slot = slot;
    r.guest_phys_addr = gpa;
    r.memory_size = size;
    r.userspace_addr = reinterpret_cast<uint64_t>(mem);
    return kvm.SetUserMemoryRegion(vm_fd.get(), r);
  };
  ASSERT_TRUE(region(0, 0, 0x10000));
  EXPECT_EQ(region(1, 0x8000, 0x10000).error().sys_errno, EEXIST);  // overlap
  EXPECT_EQ(region(0, 0, 0x20000).error().sys_errno, EINVAL);       // resize
  EXPECT_EQ(region(2, 0, 0).error().sys_errno, EINVAL);  // delete absent
  EXPECT_EQ(region(509, 0x100000, 0x1000).error().sys_errno, EINVAL);  // id
  EXPECT_EQ(region(1 | (1 << 16), 0x100000, 0x1000).error().sys_errno,
            EINVAL);  // SMM
  EXPECT_EQ(region(1, 0x100800, 0x1000).error().sys_errno,
            EINVAL);                         // alignment
  EXPECT_TRUE(region(0, 0x20000, 0x10000));  // a move keeps its size: allowed
  EXPECT_TRUE(region(0, 0x20000, 0));
  EXPECT_TRUE(kvm.slots.empty());
  EXPECT_EQ(kvm.calls_on_closed_vm_fd, 0);
}

}  // namespace
}  // namespace devpass::vmm
