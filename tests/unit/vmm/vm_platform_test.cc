// The VMM side of device assignment on a whole VM against the fake KVM:
// VmPlatform's maps, traps and routes with their refusals, MMIO exits of
// every width reaching a trapped range, a trap handler moving its own range
// from a vCPU, the KVM-VFIO device, and teardown order (nothing touches the
// VM fd after it closed; a device's registrations go before the VM's own).

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "fake_kvm.h"
#include "pci/host_bridge.h"
#include "synthetic_bzimage.h"
#include "vm_host_dir.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

namespace devpass::vmm {
namespace {

using testing::FakeKvm;

// A trapped BAR: records accesses, answers reads with offset-derived bytes.
class Bar : public pci::IoHandler {
 public:
  struct Access {
    bool write;
    uint64_t offset;
    size_t size;
    uint64_t value;
  };
  void Read(uint64_t offset, std::span<uint8_t> d) override {
    std::lock_guard lock(mu);
    log.push_back({false, offset, d.size(), 0});
    for (size_t i = 0; i < d.size(); ++i)
      d[i] = static_cast<uint8_t>(0xa0 + offset + i);
  }
  void Write(uint64_t offset, std::span<const uint8_t> d) override {
    std::lock_guard lock(mu);
    log.push_back({true, offset, d.size(), pci::LoadLe(d)});
  }
  std::mutex mu;
  std::vector<Access> log;
};

class VmPlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bar_mem = ::mmap(nullptr, kBarBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(bar_mem, MAP_FAILED);
  }
  void TearDown() override { ::munmap(bar_mem, kBarBytes); }
  std::unique_ptr<Vm> MakeVm() {
    auto vm = Vm::Create(kvm, Root(dir), config);
    EXPECT_TRUE(vm) << vm.error().message;
    return vm ? std::move(*vm) : nullptr;
  }
  static UniqueFd EventFd() { return UniqueFd(::eventfd(0, EFD_CLOEXEC)); }
  size_t Count(const std::string& prefix) {
    size_t n = 0;
    for (const auto& c : kvm.calls) n += c.rfind(prefix, 0) == 0;
    return n;
  }
  ptrdiff_t IndexOf(const std::string& call) {
    auto it = std::find(kvm.calls.begin(), kvm.calls.end(), call);
    return it == kvm.calls.end() ? -1 : it - kvm.calls.begin();
  }

  static constexpr uint64_t kBarBytes = 64 * kKiB;
  static constexpr uint64_t kHole = layout::kPciHole.value;
  testing::VmHostDir host{"devpass-vm-platform-test"};
  std::filesystem::path dir = host.path();
  VmConfig config = host.Config();
  FakeKvm kvm;
  void* bar_mem = nullptr;
};

TEST_F(VmPlatformTest, MapMemoryIsARuntimeMemslotDeletedOnRelease) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  auto reg = vm->platform().MapMemory(kHole, kBarBytes, bar_mem, "edu BAR0");
  ASSERT_TRUE(reg) << reg.error().message;
  ASSERT_EQ(kvm.slots.size(), 2u);  // RAM below 4 GiB, the BAR
  EXPECT_EQ(kvm.slots.at(1).guest_phys_addr, kHole);
  EXPECT_EQ(kvm.slots.at(1).memory_size, kBarBytes);
  EXPECT_EQ(kvm.slots.at(1).userspace_addr,
            reinterpret_cast<uint64_t>(bar_mem));
  ASSERT_EQ(vm->memslots().List().size(), 2u);
  EXPECT_EQ(vm->memslots().List()[1].name, "edu BAR0");
  reg->reset();
  EXPECT_EQ(kvm.slots.size(), 1u);
  EXPECT_EQ(kvm.regions.back().slot, 1u);
  EXPECT_EQ(kvm.regions.back().memory_size, 0u);
}

TEST_F(VmPlatformTest, MapMemoryRefusesRamOtherMapsTrapsAndInKernelDevices) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  pci::GuestPlatform& p = vm->platform();
  auto ram = p.MapMemory(64 * kMiB, kBarBytes, bar_mem, "rogue BAR");
  ASSERT_FALSE(ram);
  EXPECT_EQ(ram.error().code, ErrorCode::kConflict);
  EXPECT_NE(
      ram.error().message.find("rogue BAR overlaps guest RAM at 0x0-0x7ffffff"),
      std::string::npos)
      << ram.error().message;

  auto a = p.MapMemory(kHole, kBarBytes, bar_mem, "nic BAR0");
  ASSERT_TRUE(a);
  auto other = p.MapMemory(kHole + 0x1000, 0x1000, bar_mem, "gpu BAR1");
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find(
                "overlaps nic BAR0 (mapped, KVM memory slot 1)"),
            std::string::npos)
      << other.error().message;

  auto trap = p.TrapMmio(kHole + 0x100000, 0x1000, std::make_shared<Bar>(),
                         "MSI-X table");
  ASSERT_TRUE(trap);
  auto over_trap =
      p.MapMemory(kHole + 0x100000, 0x2000, bar_mem, "BAR over table");
  ASSERT_FALSE(over_trap);
  EXPECT_NE(over_trap.error().message.find("MSI-X table (trapped MMIO)"),
            std::string::npos);

  const std::pair<uint64_t, const char*> fixed_ranges[] = {
      {layout::kIoApic.value, "the IOAPIC (in-kernel)"},
      {layout::kLocalApic.value + 0x10000,
       "the local APIC and MSI window (in-kernel)"},
      {layout::kKvmTss.value, "KVM's identity-map and TSS pages"},
      {layout::kKvmIdentityMap.value, "KVM's identity-map and TSS pages"}};
  for (const auto& [gpa, what] : fixed_ranges) {
    auto fixed = p.MapMemory(gpa, 0x1000, bar_mem, "x");
    ASSERT_FALSE(fixed) << std::hex << gpa;
    EXPECT_NE(fixed.error().message.find(what), std::string::npos)
        << fixed.error().message;
  }

  auto unaligned = p.MapMemory(kHole + 0x200800, 0x1000, bar_mem, "x");
  ASSERT_FALSE(unaligned);
  EXPECT_EQ(unaligned.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(unaligned.error().message.find("page aligned"), std::string::npos);
  EXPECT_FALSE(p.MapMemory(kHole + 0x200000, 0x1000,
                           static_cast<uint8_t*>(bar_mem) + 16, "x"));
  EXPECT_EQ(kvm.slots.size(), 2u);  // none of the refused reached KVM
}

TEST_F(VmPlatformTest, TrapMmioRefusesRamMemslotsAndOtherTraps) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  pci::GuestPlatform& p = vm->platform();
  auto bar = std::make_shared<Bar>();
  auto ram = p.TrapMmio(0x100000, 0x1000, bar, "x");
  ASSERT_FALSE(ram);
  EXPECT_NE(ram.error().message.find("guest RAM"), std::string::npos);
  auto mapped = p.MapMemory(kHole, kBarBytes, bar_mem, "BAR0 mmap");
  ASSERT_TRUE(mapped);
  auto over = p.TrapMmio(kHole + kBarBytes - 8, 16, bar, "BAR0 tail");
  ASSERT_FALSE(over);
  EXPECT_NE(over.error().message.find("BAR0 mmap (mapped, KVM memory slot 1)"),
            std::string::npos);
  auto t1 = p.TrapMmio(kHole + kBarBytes, 0x1000, bar, "table");
  ASSERT_TRUE(t1);
  auto t2 = p.TrapMmio(kHole + kBarBytes + 0x800, 0x1000, bar, "pba");
  ASSERT_FALSE(t2);
  EXPECT_EQ(t2.error().code, ErrorCode::kConflict);
  EXPECT_NE(t2.error().message.find("overlaps table"), std::string::npos);
  EXPECT_FALSE(p.TrapMmio(layout::kLocalApic.value, 0x10, bar, "x"));
  EXPECT_FALSE(p.TrapMmio(kHole, 0, bar, "empty"));
  EXPECT_EQ(vm->mmio().size(), 1u);
  t1->reset();
  EXPECT_EQ(vm->mmio().size(), 0u);
}

TEST_F(VmPlatformTest, TrapPioRefusesTakenAndInKernelPorts) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  pci::GuestPlatform& p = vm->platform();
  auto bar = std::make_shared<Bar>();
  const size_t before = vm->pio().size();
  auto io = p.TrapPio(layout::kPciIoStart, 0x20, bar, "nic BAR2");
  ASSERT_TRUE(io);
  EXPECT_EQ(vm->pio().size(), before + 1);
  uint8_t d[2] = {0, 0};
  EXPECT_TRUE(vm->pio().Read(layout::kPciIoStart + 4, d));
  EXPECT_EQ(d[0], 0xa4);
  auto com1 = p.TrapPio(0x3f0, 0x10, bar, "x");
  ASSERT_FALSE(com1);
  EXPECT_NE(com1.error().message.find("COM1"), std::string::npos);
  auto cf8 = p.TrapPio(0xcfc, 4, bar, "x");
  ASSERT_FALSE(cf8);
  EXPECT_NE(cf8.error().message.find("PCI configuration ports"),
            std::string::npos);
  for (uint16_t port : {0x20, 0x42, 0x61, 0xa1, 0x4d0}) {
    auto k = p.TrapPio(port, 1, bar, "x");
    ASSERT_FALSE(k) << port;
    EXPECT_NE(k.error().message.find("in-kernel"), std::string::npos);
  }
  EXPECT_FALSE(p.TrapPio(0xfff0, 0x20, bar, "past the end"));
  io->reset();
  EXPECT_EQ(vm->pio().size(), before);
}

TEST_F(VmPlatformTest, RouteMsiUpdateAndRelease) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  UniqueFd e = EventFd();
  auto route = vm->platform().RouteMsi(e.get(), {0xfee01000, 0x4041});
  ASSERT_TRUE(route) << route.error().message;
  ASSERT_EQ(kvm.irqfds.size(), 1u);
  EXPECT_EQ(kvm.irqfds[0].fd, e.get());
  EXPECT_EQ(kvm.irqfds[0].gsi, layout::kFirstMsiGsi);
  EXPECT_EQ(kvm.irqfds[0].resamplefd, -1);
  ASSERT_EQ(kvm.routing.size(), 41u);
  EXPECT_EQ(kvm.routing.back().type,
            static_cast<uint32_t>(KVM_IRQ_ROUTING_MSI));
  EXPECT_EQ(kvm.routing.back().u.msi.address_lo, 0xfee01000u);
  ASSERT_TRUE((*route)->Update({0xfee02000, 0x4042}));
  EXPECT_EQ(kvm.routing.back().u.msi.address_lo, 0xfee02000u);
  EXPECT_EQ(kvm.routing.back().u.msi.data, 0x4042u);
  auto refused = (*route)->Update({0xfed00000, 0x4042});  // HPET, not an APIC
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(refused.error().message.find(
                "a guest may only target the local APIC window"),
            std::string::npos);
  EXPECT_EQ(kvm.routing.back().u.msi.address_lo, 0xfee02000u);  // unchanged

  route->reset();
  EXPECT_TRUE(kvm.irqfds.empty());
  EXPECT_EQ(kvm.routing.size(), 40u);
  // The irqfd went before its route.
  const ptrdiff_t deassign = IndexOf("Irqfd deassign 24");
  ASSERT_GE(deassign, 0);
  EXPECT_EQ(kvm.calls.back(), "SetGsiRouting 40");
  EXPECT_LT(deassign, static_cast<ptrdiff_t>(kvm.calls.size()) - 1);
}

TEST_F(VmPlatformTest, RouteMsiRefusesOtherAddressesBeforeKvm) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  UniqueFd e = EventFd();
  auto r = vm->platform().RouteMsi(e.get(), {layout::kPciHole.value, 0x41});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied);
  EXPECT_NE(
      r.error().message.find("a guest may only target the local APIC window "
                             "0xfee00000-0xfeefffff"),
      std::string::npos);
  EXPECT_EQ(Count("SetGsiRouting"), 0u);
  EXPECT_EQ(Count("Irqfd"), 0u);
  // An irqfd failure releases the GSI it had.
  kvm.fail_irqfd_errno = EBADF;
  EXPECT_FALSE(vm->platform().RouteMsi(e.get(), {0xfee00000, 0x41}));
  EXPECT_EQ(vm->irq_router().msi_route_count(), 0u);
  EXPECT_EQ(kvm.routing.size(), 40u);
}

TEST_F(VmPlatformTest, RouteIntxIsAResampledIrqfdOnAnIoApicInput) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  UniqueFd trig = EventFd(), res = EventFd();
  const uint32_t gsi = layout::PciIntxGsi(3, 1).value;
  auto intx = vm->platform().RouteIntx(trig.get(), res.get(), gsi);
  ASSERT_TRUE(intx) << intx.error().message;
  ASSERT_EQ(kvm.irqfds.size(), 1u);
  EXPECT_EQ(kvm.irqfds[0].gsi, gsi);
  EXPECT_EQ(kvm.irqfds[0].resamplefd, res.get());
  EXPECT_EQ(Count("SetGsiRouting"), 0u);  // KVM's defaults already route it
  auto msi_gsi =
      vm->platform().RouteIntx(trig.get(), res.get(), layout::kFirstMsiGsi);
  ASSERT_FALSE(msi_gsi);
  EXPECT_NE(msi_gsi.error().message.find("not a PCI INTx line"),
            std::string::npos);
  EXPECT_FALSE(vm->platform().RouteIntx(trig.get(), res.get(), 4));  // COM1's
  auto no_resample = vm->platform().RouteIntx(trig.get(), -1, gsi);
  ASSERT_FALSE(no_resample);
  EXPECT_NE(no_resample.error().message.find("resample"), std::string::npos);
  intx->reset();
  EXPECT_TRUE(kvm.irqfds.empty());
  EXPECT_EQ(IndexOf("Irqfd deassign " + std::to_string(gsi)),
            static_cast<ptrdiff_t>(kvm.calls.size()) - 1);
}

// Guest MMIO of every width through the vCPU loop to a trapped range.
TEST_F(VmPlatformTest, MmioExitsOfEveryWidthReachTheTrap) {
  const uint64_t base = kHole + 0x10000;
  std::vector<uint64_t> read_back;
  auto keep = [&](kvm_run* run) {
    read_back.push_back(pci::LoadLe({run->mmio.data, run->mmio.len}));
  };
  kvm.script = {
      testing::Mmio(base + 0x1, 1, true, 0x5a),
      testing::Mmio(base + 0x2, 2, true, 0xbeef),
      testing::Mmio(base + 0x4, 4, true, 0xdeadbeef),
      testing::Mmio(base + 0x8, 8, true, 0x0123456789abcdefull),
      testing::Mmio(base + 0x10, 1, false),
      testing::Then(keep, testing::Mmio(base + 0x10, 2, false)),
      testing::Then(keep, testing::Mmio(base + 0x10, 4, false)),
      testing::Then(keep, testing::Mmio(base + 0x10, 8, false)),
      testing::Then(keep,
                    testing::Mmio(base + 0x20000, 4, false)),  // nothing there
      testing::Then(keep, testing::IoOut(layout::kPowerOffPort, 0)),
  };
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  auto bar = std::make_shared<Bar>();
  auto trap = vm->platform().TrapMmio(base, 0x1000, bar, "bar");
  ASSERT_TRUE(trap);
  ASSERT_TRUE(vm->Start());
  EXPECT_EQ(vm->Wait().reason, StopReason::kPowerOff);
  ASSERT_EQ(bar->log.size(), 8u);
  const std::vector<std::tuple<uint64_t, size_t, uint64_t>> writes = {
      {1, 1, 0x5a},
      {2, 2, 0xbeef},
      {4, 4, 0xdeadbeef},
      {8, 8, 0x0123456789abcdefull}};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(bar->log[i].write);
    EXPECT_EQ(
        std::tuple(bar->log[i].offset, bar->log[i].size, bar->log[i].value),
        writes[i]);
  }
  for (size_t i = 4; i < 8; ++i) {
    EXPECT_FALSE(bar->log[i].write);
    EXPECT_EQ(bar->log[i].offset, 0x10u);
    EXPECT_EQ(bar->log[i].size, size_t{1} << (i - 4));
  }
  ASSERT_EQ(read_back.size(), 5u);
  EXPECT_EQ(read_back[0], 0xb0u);
  EXPECT_EQ(read_back[1], 0xb1b0u);
  EXPECT_EQ(read_back[2], 0xb3b2b1b0u);
  EXPECT_EQ(read_back[3], 0xb7b6b5b4b3b2b1b0ull);
  EXPECT_EQ(read_back[4], 0xffffffffu);  // unmapped MMIO reads all ones
}

// A BAR whose register write (from a vCPU, via its own trap) moves it: the
// handler drops its registration and takes a new one while dispatching.
class MovingBar : public pci::IoHandler {
 public:
  explicit MovingBar(pci::GuestPlatform& p) : platform_(p) {}
  void Read(uint64_t, std::span<uint8_t> d) override { pci::StoreLe(d, 0x77); }
  void Write(uint64_t, std::span<const uint8_t> d) override {
    std::lock_guard lock(mu_);
    reg_.reset();  // removes our own range while we run in it
    auto r =
        platform_.TrapMmio(pci::LoadLe(d), 0x1000, self_.lock(), "moving BAR");
    ok = r.has_value();
    if (r) reg_ = std::move(*r);
  }
  void Place(std::shared_ptr<MovingBar> self, uint64_t at) {
    self_ = self;
    auto r = platform_.TrapMmio(at, 0x1000, std::move(self), "moving BAR");
    ASSERT_TRUE(r);
    reg_ = std::move(*r);
  }
  void Drop() {
    std::lock_guard lock(mu_);
    reg_.reset();
  }
  bool ok = false;

 private:
  pci::GuestPlatform& platform_;
  std::weak_ptr<MovingBar> self_;
  std::mutex mu_;
  pci::RegistrationPtr reg_;
};

TEST_F(VmPlatformTest, ATrapHandlerMovesItsOwnRangeFromAVcpu) {
  const uint64_t from = kHole + 0x40000, to = kHole + 0x80000;
  kvm.script = {testing::Mmio(from, 8, true, to),
                testing::IoOut(layout::kPowerOffPort, 0)};
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  auto bar = std::make_shared<MovingBar>(vm->platform());
  bar->Place(bar, from);
  ASSERT_TRUE(vm->Start());
  EXPECT_EQ(vm->Wait().reason, StopReason::kPowerOff);
  EXPECT_TRUE(bar->ok);
  EXPECT_FALSE(vm->mmio().Find(from).handler);
  EXPECT_EQ(vm->mmio().Find(to + 4).handler.get(), bar.get());
  bar->Drop();
}

TEST_F(VmPlatformTest, KvmVfioDeviceIsCreatedOnceAndGroupsComeAndGo) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  EXPECT_EQ(Count("CreateDevice"), 0u);  // not before it is needed
  auto g1_path = dir / "group1", g2_path = dir / "group2";
  std::ofstream(g1_path) << "1";
  std::ofstream(g2_path) << "2";
  UniqueFd g1(::open(g1_path.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd g2(::open(g2_path.c_str(), O_RDONLY | O_CLOEXEC));
  auto r1 = vm->AddKvmVfioGroup(g1.get());
  ASSERT_TRUE(r1) << r1.error().message;
  auto r2 = vm->AddKvmVfioGroup(g2.get());
  ASSERT_TRUE(r2);
  EXPECT_EQ(Count("CreateDevice"), 1u);
  EXPECT_EQ(kvm.vfio_groups.size(), 2u);
  auto again = vm->AddKvmVfioGroup(g1.get());  // the kernel's EEXIST
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().sys_errno, EEXIST);
  g1.Reset();  // the caller's fd closed: our dup still names the group
  r1->reset();
  EXPECT_EQ(kvm.vfio_groups.size(), 1u);
  auto bad = vm->AddKvmVfioGroup(-1);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not open"), std::string::npos);
  vm.reset();  // deletes g2 before the VM fd closes
  EXPECT_TRUE(kvm.vfio_groups.empty());
  EXPECT_EQ(kvm.calls_on_closed_vm_fd, 0);
  r2->reset();  // after the VM: nothing
}

TEST_F(VmPlatformTest, Mmio64WindowStartsAbove4GiB) {
  auto vm = MakeVm();
  ASSERT_TRUE(vm);
  EXPECT_EQ(vm->mmio64_base(), layout::k4GiB);
  EXPECT_EQ(layout::Mmio64Base(4 * kGiB + 1), Gpa(5 * kGiB));
  EXPECT_EQ(layout::Mmio64Base(6 * kGiB), Gpa(6 * kGiB));
}

// A device on the bus that holds every kind of registration, as a
// passthrough function does.
class Device : public pci::HostBridge {
 public:
  std::vector<pci::RegistrationPtr> regs;
  std::unique_ptr<pci::MsiRoute> msi;
};

// Teardown with the registrations held by a device on the bus: the device
// is released first, while the VM can still take them back; nothing runs
// on the VM fd after it closed.
TEST_F(VmPlatformTest, TeardownReleasesTheDevicesFirstThenTheVm) {
  UniqueFd e = EventFd(), trig = EventFd(), res = EventFd();
  auto group_path = dir / "group";
  std::ofstream(group_path) << "g";
  UniqueFd group(::open(group_path.c_str(), O_RDONLY | O_CLOEXEC));
  {
    auto vm = MakeVm();
    ASSERT_TRUE(vm);
    auto dev = std::make_shared<Device>();
    pci::GuestPlatform& p = vm->platform();
    dev->regs.push_back(*p.MapMemory(kHole, kBarBytes, bar_mem, "BAR0"));
    dev->regs.push_back(*p.TrapMmio(kHole + kBarBytes, 0x1000,
                                    std::make_shared<Bar>(), "table"));
    dev->regs.push_back(
        *p.TrapPio(layout::kPciIoStart, 0x20, std::make_shared<Bar>(), "BAR2"));
    dev->regs.push_back(
        *p.RouteIntx(trig.get(), res.get(), layout::PciIntxGsi(3, 1).value));
    dev->regs.push_back(*vm->AddKvmVfioGroup(group.get()));
    dev->msi = std::move(*p.RouteMsi(e.get(), {0xfee00000, 0x41}));
    ASSERT_TRUE(vm->pci_bus().Add(3, 0, dev));
    dev.reset();  // the bus (and the config-port handler) hold it now
    ASSERT_EQ(kvm.irqfds.size(), 2u);
  }
  EXPECT_EQ(kvm.calls_on_closed_vm_fd, 0);
  EXPECT_TRUE(kvm.irqfds.empty());
  EXPECT_TRUE(kvm.slots.empty());
  EXPECT_TRUE(kvm.vfio_groups.empty());
  // The device's BAR slot (1) was deleted before guest RAM's (0).
  const ptrdiff_t bar_del = IndexOf("SetUserMemoryRegion 1 0xc0000000 0");
  const ptrdiff_t ram_del = IndexOf("SetUserMemoryRegion 0 0 0");
  ASSERT_GE(bar_del, 0);
  ASSERT_GE(ram_del, 0);
  EXPECT_LT(bar_del, ram_del);
  // Every irqfd assigned was deassigned once.
  int assigns = 0, deassigns = 0;
  for (const auto& c : kvm.irqfd_calls) (c.assign ? assigns : deassigns)++;
  EXPECT_EQ(assigns, 2);
  EXPECT_EQ(deassigns, 2);
}

// Registrations held outside the VM (a device someone else still holds):
// the VM takes everything back from KVM before its fd closes; the late
// registrations then do nothing.
TEST_F(VmPlatformTest, RegistrationsMayOutliveTheVm) {
  UniqueFd e = EventFd(), trig = EventFd(), res = EventFd();
  std::vector<pci::RegistrationPtr> regs;
  std::unique_ptr<pci::MsiRoute> msi;
  {
    auto vm = MakeVm();
    ASSERT_TRUE(vm);
    pci::GuestPlatform& p = vm->platform();
    regs.push_back(*p.MapMemory(kHole, kBarBytes, bar_mem, "BAR0"));
    regs.push_back(*p.TrapMmio(kHole + kBarBytes, 0x1000,
                               std::make_shared<Bar>(), "table"));
    regs.push_back(
        *p.TrapPio(layout::kPciIoStart, 0x20, std::make_shared<Bar>(), "BAR2"));
    regs.push_back(
        *p.RouteIntx(trig.get(), res.get(), layout::PciIntxGsi(5, 2).value));
    msi = std::move(*p.RouteMsi(e.get(), {0xfee00000, 0x41}));
  }
  EXPECT_EQ(kvm.calls_on_closed_vm_fd, 0);
  EXPECT_TRUE(kvm.irqfds.empty());
  EXPECT_TRUE(kvm.slots.empty());
  const size_t calls = kvm.calls.size();
  EXPECT_FALSE(msi->Update({0xfee00000, 0x42}));
  msi.reset();
  regs.clear();
  EXPECT_EQ(kvm.calls.size(), calls);
  EXPECT_EQ(kvm.calls_on_closed_vm_fd, 0);
}

}  // namespace
}  // namespace devpass::vmm
