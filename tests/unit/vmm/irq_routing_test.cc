// The GSI routing table and irqfds against the fake KVM: KVM's default
// entries always re-included, MSI GSIs allocated/reused/re-targeted, the
// local APIC window enforced, every assign paired with a deassign.

#include "vmm/irq_routing.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <map>
#include <set>
#include <thread>

#include "fake_kvm.h"
#include "vmm/layout.h"

namespace devpass::vmm {
namespace {

using testing::FakeKvm;

pci::MsiMessage Msg(uint32_t vector, uint32_t apic = 0) {
  return {layout::kMsiAddressBase | (apic << 12), vector};
}

class IrqRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kvm_fd = *kvm.OpenKvm("/dev/kvm");
    vm_fd = *kvm.CreateVm(kvm_fd.get());
    ASSERT_TRUE(kvm.CreateIrqchip(vm_fd.get()));
  }
  static UniqueFd EventFd() { return UniqueFd(::eventfd(0, EFD_CLOEXEC)); }
  // The MSI entries of the fake's current table, GSI -> vector.
  std::map<uint32_t, uint32_t> MsiRoutes() {
    std::map<uint32_t, uint32_t> out;
    for (const auto& e : kvm.routing) {
      if (e.type == KVM_IRQ_ROUTING_MSI) out[e.gsi] = e.u.msi.data;
    }
    return out;
  }
  size_t DefaultEntriesInFake() {
    auto defaults = DefaultGsiRoutes();
    size_t n = 0;
    for (const auto& d : defaults) {
      for (const auto& e : kvm.routing) {
        if (std::memcmp(&d, &e, sizeof(d)) == 0) {
          ++n;
          break;
        }
      }
    }
    return n;
  }

  FakeKvm kvm;
  UniqueFd kvm_fd, vm_fd;
};

TEST(DefaultGsiRoutes, AreKvmsDefaultTable) {
  auto t = DefaultGsiRoutes();
  ASSERT_EQ(t.size(), 16u * 2 + 8u);
  std::map<uint32_t, std::vector<std::pair<uint32_t, uint32_t>>> by_gsi;
  for (const auto& e : t) {
    EXPECT_EQ(e.type, static_cast<uint32_t>(KVM_IRQ_ROUTING_IRQCHIP));
    EXPECT_EQ(e.flags, 0u);
    by_gsi[e.gsi].push_back({e.u.irqchip.irqchip, e.u.irqchip.pin});
  }
  ASSERT_EQ(by_gsi.size(), 24u);
  using P = std::vector<std::pair<uint32_t, uint32_t>>;
  EXPECT_EQ(by_gsi[0],
            (P{{KVM_IRQCHIP_IOAPIC, 0}, {KVM_IRQCHIP_PIC_MASTER, 0}}));
  EXPECT_EQ(by_gsi[4],
            (P{{KVM_IRQCHIP_IOAPIC, 4}, {KVM_IRQCHIP_PIC_MASTER, 4}}));
  EXPECT_EQ(by_gsi[9],
            (P{{KVM_IRQCHIP_IOAPIC, 9}, {KVM_IRQCHIP_PIC_SLAVE, 1}}));
  EXPECT_EQ(by_gsi[15],
            (P{{KVM_IRQCHIP_IOAPIC, 15}, {KVM_IRQCHIP_PIC_SLAVE, 7}}));
  EXPECT_EQ(by_gsi[16], (P{{KVM_IRQCHIP_IOAPIC, 16}}));
  EXPECT_EQ(by_gsi[23], (P{{KVM_IRQCHIP_IOAPIC, 23}}));
}

TEST(CheckMsiAddress, OnlyTheLocalApicWindow) {
  EXPECT_TRUE(CheckMsiAddress(0xfee00000));
  EXPECT_TRUE(CheckMsiAddress(0xfeeff00c));
  for (uint64_t bad : {uint64_t{0}, uint64_t{0xfedfffff}, uint64_t{0xfef00000},
                       uint64_t{0x1fee00000}, uint64_t{0xc0000000}}) {
    auto st = CheckMsiAddress(bad);
    ASSERT_FALSE(st) << std::hex << bad;
    EXPECT_EQ(st.error().code, ErrorCode::kPermissionDenied);
    EXPECT_NE(
        st.error().message.find("a guest may only target the local APIC window "
                                "0xfee00000-0xfeefffff"),
        std::string::npos);
  }
}

TEST_F(IrqRoutingTest, AllocateFreeReuseAndTheDefaultsStay) {
  IrqRouter router(kvm, vm_fd.get(), 4096);
  EXPECT_TRUE(router.table().empty());  // KVM's own defaults until then
  auto a = router.AllocateMsi(Msg(0x41));
  auto b = router.AllocateMsi(Msg(0x42));
  auto c = router.AllocateMsi(Msg(0x43));
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->gsi().value, layout::kFirstMsiGsi);
  EXPECT_EQ(b->gsi().value, layout::kFirstMsiGsi + 1);
  EXPECT_EQ(c->gsi().value, layout::kFirstMsiGsi + 2);
  EXPECT_EQ(kvm.routing_sets, 3);
  EXPECT_EQ(MsiRoutes(),
            (std::map<uint32_t, uint32_t>{{24, 0x41}, {25, 0x42}, {26, 0x43}}));
  EXPECT_EQ(DefaultEntriesInFake(), 40u);
  EXPECT_EQ(kvm.routing.size(), 43u);

  b->Reset();  // frees GSI 25
  EXPECT_EQ(MsiRoutes(),
            (std::map<uint32_t, uint32_t>{{24, 0x41}, {26, 0x43}}));
  EXPECT_EQ(DefaultEntriesInFake(), 40u);
  auto d = router.AllocateMsi(Msg(0x44));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->gsi().value, 25u);  // reused
  EXPECT_EQ(router.msi_route_count(), 3u);

  // The router's idea of the table is the fake's.
  auto t = router.table();
  ASSERT_EQ(t.size(), kvm.routing.size());
  EXPECT_EQ(std::memcmp(t.data(), kvm.routing.data(), t.size() * sizeof(t[0])),
            0);

  // A, C, D dropped: only the defaults remain (still set explicitly).
  *a = IrqRouter::MsiGsi();
  c->Reset();
  d->Reset();
  EXPECT_TRUE(MsiRoutes().empty());
  EXPECT_EQ(kvm.routing.size(), 40u);
}

TEST_F(IrqRoutingTest, UpdateRetargetsAndAnEqualMessageCostsNothing) {
  IrqRouter router(kvm, vm_fd.get(), 4096);
  auto r = router.AllocateMsi(Msg(0x30, 0));
  ASSERT_TRUE(r);
  const int sets = kvm.routing_sets;
  ASSERT_TRUE(r->Update(Msg(0x30, 0)));
  EXPECT_EQ(kvm.routing_sets, sets);
  ASSERT_TRUE(r->Update(Msg(0x31, 2)));
  EXPECT_EQ(kvm.routing_sets, sets + 1);
  const auto& e = kvm.routing.back();
  EXPECT_EQ(e.gsi, 24u);
  EXPECT_EQ(e.u.msi.address_lo, 0xfee02000u);
  EXPECT_EQ(e.u.msi.address_hi, 0u);
  EXPECT_EQ(e.u.msi.data, 0x31u);
}

TEST_F(IrqRoutingTest,
       RefusesAddressesOutsideTheApicWindowAndKeepsTheOldRoute) {
  IrqRouter router(kvm, vm_fd.get(), 4096);
  auto bad = router.AllocateMsi({0xfed40000, 0x41});  // the TPM, say
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(kvm.routing_sets, 0);
  auto r = router.AllocateMsi(Msg(0x41));
  ASSERT_TRUE(r);
  auto st = r->Update({0x1000, 0x41});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("address 0x1000"), std::string::npos);
  EXPECT_EQ(MsiRoutes(), (std::map<uint32_t, uint32_t>{{24, 0x41}}));
}

TEST_F(IrqRoutingTest, AKernelRefusalRollsBack) {
  IrqRouter router(kvm, vm_fd.get(), 4096);
  kvm.fail_routing_errno = ENOMEM;
  auto r = router.AllocateMsi(Msg(0x41));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot route GSI 24"), std::string::npos);
  EXPECT_EQ(router.msi_route_count(), 0u);
  auto ok = router.AllocateMsi(Msg(0x42));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->gsi().value, 24u);
  kvm.fail_routing_errno = EINVAL;
  ASSERT_FALSE(ok->Update(Msg(0x43)));
  EXPECT_EQ(MsiRoutes(), (std::map<uint32_t, uint32_t>{{24, 0x42}}));
  ASSERT_TRUE(ok->Update(Msg(0x43)));
  EXPECT_EQ(MsiRoutes(), (std::map<uint32_t, uint32_t>{{24, 0x43}}));
}

TEST_F(IrqRoutingTest, RunsOutOfGsisWithANumber) {
  IrqRouter router(kvm, vm_fd.get(), layout::kFirstMsiGsi + 2);
  auto a = router.AllocateMsi(Msg(1));
  auto b = router.AllocateMsi(Msg(2));
  ASSERT_TRUE(a && b);
  auto c = router.AllocateMsi(Msg(3));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kBusy);
  EXPECT_NE(c.error().message.find("KVM allows 26 GSIs"), std::string::npos);
}

TEST_F(IrqRoutingTest, IrqfdAssignAndDeassignComeInPairs) {
  IrqRouter router(kvm, vm_fd.get(), 4096);
  UniqueFd e1 = EventFd(), e2 = EventFd(), trig = EventFd(), res = EventFd();
  auto route = router.AllocateMsi(Msg(0x50));
  ASSERT_TRUE(route);
  {
    auto f1 = router.AssignIrqfd(e1.get(), route->gsi());
    ASSERT_TRUE(f1);
    auto intx =
        router.AssignIrqfd(trig.get(), layout::PciIntxGsi(3, 1), res.get());
    ASSERT_TRUE(intx) << intx.error().message;
    ASSERT_EQ(kvm.irqfds.size(), 2u);
    EXPECT_EQ(kvm.irqfds[1].resamplefd, res.get());
    EXPECT_EQ(router.irqfd_count(), 2u);
    // Moving a handle moves the ownership, not the binding.
    IrqRouter::Irqfd moved = std::move(*f1);
    EXPECT_FALSE(f1->valid());
    EXPECT_EQ(kvm.irqfds.size(), 2u);
    // The same eventfd twice: the kernel's EBUSY, with context.
    auto twice = router.AssignIrqfd(e1.get(), Gsi(5));
    ASSERT_FALSE(twice);
    EXPECT_EQ(twice.error().sys_errno, EBUSY);
    EXPECT_NE(twice.error().message.find("cannot bind eventfd"),
              std::string::npos);
  }
  EXPECT_TRUE(kvm.irqfds.empty());
  ASSERT_EQ(kvm.irqfd_calls.size(), 5u);  // 2 assigns, 1 refused, 2 deassigns
  int assigns = 0, deassigns = 0;
  for (const auto& c : kvm.irqfd_calls) (c.assign ? assigns : deassigns)++;
  EXPECT_EQ(assigns, 3);
  EXPECT_EQ(deassigns, 2);
  EXPECT_EQ(router.irqfd_count(), 0u);
  (void)e2;
}

TEST_F(IrqRoutingTest, ResampleOnlyOnAnIrqchipGsi) {
  IrqRouter router(kvm, vm_fd.get(), 4096);
  UniqueFd trig = EventFd(), res = EventFd();
  auto r = router.AssignIrqfd(trig.get(), Gsi(layout::kFirstMsiGsi), res.get());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(kvm.irqfd_calls.empty());  // refused before KVM
  // The fake refuses it too (the kernel would bind it, and never resample).
  kvm_irqfd a{};
  a.fd = static_cast<uint32_t>(trig.get());
  a.gsi = 30;
  a.flags = KVM_IRQFD_FLAG_RESAMPLE;
  a.resamplefd = static_cast<uint32_t>(res.get());
  EXPECT_EQ(kvm.Irqfd(vm_fd.get(), a).error().sys_errno, EINVAL);
}

TEST_F(IrqRoutingTest,
       RouterTeardownDeassignsWhatIsLeftAndHandlesThenDoNothing) {
  auto router = std::make_unique<IrqRouter>(kvm, vm_fd.get(), 4096);
  UniqueFd e = EventFd();
  auto route = router->AllocateMsi(Msg(0x60));
  ASSERT_TRUE(route);
  auto fd = router->AssignIrqfd(e.get(), route->gsi());
  ASSERT_TRUE(fd);
  router.reset();  // the VM is going away
  EXPECT_TRUE(kvm.irqfds.empty());
  const size_t calls = kvm.calls.size();
  fd->Reset();
  route->Reset();
  EXPECT_EQ(kvm.calls.size(),
            calls);  // no deassign of the unknown (ENOENT), no table
  auto st = IrqRouter::MsiGsi().Update(Msg(1));
  EXPECT_FALSE(st);
}

TEST_F(IrqRoutingTest, ConcurrentAllocationsEachGetTheirOwnGsi) {
  IrqRouter router(kvm, vm_fd.get(), 4096);
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<IrqRouter::MsiGsi> kept;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = router.AllocateMsi(Msg(static_cast<uint32_t>(t * 100 + i)));
        ASSERT_TRUE(r);
        ASSERT_TRUE(r->Update(Msg(static_cast<uint32_t>(t * 100 + i + 1))));
        if (i % 2) {
          std::lock_guard lock(mu);
          kept.push_back(std::move(*r));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(router.msi_route_count(), kept.size());
  std::set<uint32_t> gsis;
  for (const auto& k : kept) gsis.insert(k.gsi().value);
  EXPECT_EQ(gsis.size(), kept.size());
  EXPECT_EQ(MsiRoutes().size(), kept.size());
  EXPECT_GE(*gsis.begin(), layout::kFirstMsiGsi);
  // At most 4 routes (one per thread) are alive besides the kept ones, and
  // freed GSIs are reused: no GSI beyond that.
  EXPECT_LT(*gsis.rbegin(), layout::kFirstMsiGsi + kept.size() + 4);
  EXPECT_EQ(DefaultEntriesInFake(), 40u);
}

}  // namespace
}  // namespace devpass::vmm
