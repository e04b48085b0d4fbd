// Hide / unhide policy and protocol against the simulated kernel.

#include "hiding/hider.h"

#include <gtest/gtest.h>

#include "base/fs.h"
#include "base/lock.h"
#include "test_host.h"

namespace devpass::testing {
namespace {

using hiding::DeviceResult;
using hiding::Hider;
using Action = DeviceResult::Action;

class HiderTest : public ::testing::Test {
 protected:
  void SetUp() override { BuildTestHost(host_); }
  Hider MakeHider() { return Hider(host_.root(), sim_, TestConfig()); }
  Result<hiding::OpReport> Hide(std::vector<std::string> devs,
                                hiding::HideOptions o = {}) {
    return MakeHider().Hide(devs, o);
  }
  Result<hiding::OpReport> Unhide(std::vector<std::string> devs,
                                  hiding::UnhideOptions o = {}) {
    return MakeHider().Unhide(devs, o);
  }
  static bool Has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
  }

  FakeHost host_;
  KernelSim sim_{host_};
};

TEST_F(HiderTest, HideAndUnhideRoundTrip) {
  auto r = Hide({kNic});
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->devices.size(), 1u);
  EXPECT_EQ(r->devices[0].action, Action::kHidden);
  EXPECT_EQ(r->devices[0].message,
            "0000:00:03.0: hidden: e1000e -> vfio-pci (/dev/vfio/3)");
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  EXPECT_EQ(OverrideOf(host_, kNic), "vfio-pci");
  EXPECT_TRUE(Exists(host_.Path("dev/vfio/3")));
  // The protocol's order: override, unbind, probe.
  std::vector<std::string> expected = {
      "sys/bus/pci/devices/0000:00:03.0/driver_override=vfio-pci",
      "sys/bus/pci/drivers/e1000e/unbind=0000:00:03.0",
      "sys/bus/pci/drivers_probe=0000:00:03.0"};
  EXPECT_EQ(sim_.writes(), expected);

  auto ledger = hiding::Ledger::Load(host_.root());
  ASSERT_TRUE(ledger);
  const auto* e = ledger->Find(*PciAddress::Parse(kNic));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->stub, "vfio-pci");
  EXPECT_EQ(e->original_driver, "e1000e");
  EXPECT_EQ(e->ids, "8086:10d3");
  EXPECT_FALSE(e->persisted);
  EXPECT_FALSE(e->assignment.has_value());
  EXPECT_TRUE(hiding::Journal(host_.root()).Empty());

  auto u = Unhide({kNic});
  ASSERT_TRUE(u) << u.error().ToString();
  EXPECT_EQ(u->devices[0].action, Action::kUnhidden);
  EXPECT_EQ(u->devices[0].message,
            "0000:00:03.0: unhidden: vfio-pci -> e1000e");
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(OverrideOf(host_, kNic), "(null)");
  EXPECT_FALSE(Exists(host_.Path("dev/vfio/3")));
  EXPECT_TRUE(hiding::Ledger::Load(host_.root())->entries().empty());
  EXPECT_TRUE(hiding::Journal(host_.root()).Empty());
}

TEST_F(HiderTest, HideUnboundDeviceAndUnhideLeavesItUnbound) {
  auto r = Hide({kEdu});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->devices[0].message,
            "0000:00:05.0: hidden: (no driver) -> vfio-pci (/dev/vfio/6)");
  EXPECT_EQ(hiding::Ledger::Load(host_.root())->entries()[0].original_driver,
            "");
  auto u = Unhide({kEdu});
  ASSERT_TRUE(u);
  EXPECT_EQ(DriverOf(host_, kEdu), "");
  EXPECT_EQ(OverrideOf(host_, kEdu), "(null)");
}

TEST_F(HiderTest, HidingTwiceIsAlreadyHidden) {
  ASSERT_TRUE(Hide({kNic}));
  size_t writes = sim_.writes().size();
  auto again = Hide({kNic, "00:03.0"});  // same device twice, short form too
  ASSERT_TRUE(again) << again.error().ToString();
  ASSERT_EQ(again->devices.size(), 1u);
  EXPECT_EQ(again->devices[0].action, Action::kAlreadyHidden);
  EXPECT_TRUE(Has(again->devices[0].message, "already hidden on vfio-pci"));
  EXPECT_EQ(sim_.writes().size(), writes);  // nothing written to the kernel
  EXPECT_EQ(hiding::Ledger::Load(host_.root())->entries()[0].original_driver,
            "e1000e");
}

TEST_F(HiderTest, HidingWithAnotherStubWhileHiddenIsAConflict) {
  ASSERT_TRUE(Hide({kNic}));
  auto r = Hide({kNic}, {.driver = "pci-stub"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(Has(r.error().message, "unhide it first"));
}

TEST_F(HiderTest, UnhideOfADeviceDevpassDidNotHideChangesNothing) {
  host_.Unbind(kEdu);
  host_.Bind(kEdu, "vfio-pci");  // e.g. by libvirt
  std::string before = Snapshot(host_);
  auto r = Unhide({kEdu});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(Has(r.error().message, "devpass did not hide it"));
  EXPECT_TRUE(Has(r.error().message, "drivers_probe"));
  EXPECT_EQ(Snapshot(host_), before);
  EXPECT_TRUE(sim_.writes().empty());
}

TEST_F(HiderTest, UnhideOfADeviceThatIsNotHiddenIsANoOp) {
  auto r = Unhide({kNic});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->devices[0].action, Action::kNotHidden);
  EXPECT_EQ(r->devices[0].message,
            "0000:00:03.0: not hidden (on e1000e); nothing to do");
  EXPECT_TRUE(sim_.writes().empty());
}

TEST_F(HiderTest, GroupWithHostMembersIsRefusedNamingThem) {
  std::string before = Snapshot(host_);
  auto r = Hide({kGpu}, {.force = true});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(Has(r.error().message, "0000:01:00.1 (snd_hda_intel)"));
  EXPECT_TRUE(Has(r.error().message, "--group"));
  EXPECT_TRUE(Has(r.error().message, "--force does not change this"));
  EXPECT_FALSE(Has(r.error().message, "0000:00:01.0"));  // the bridge is fine
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(HiderTest, GroupOptionHidesEveryNonBridgeMember) {
  auto r = Hide({kGpu}, {.group = true});
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->devices.size(), 2u);
  EXPECT_EQ(DriverOf(host_, kGpu), "vfio-pci");
  EXPECT_EQ(DriverOf(host_, kAudio), "vfio-pci");
  EXPECT_EQ(DriverOf(host_, kRootPort), "pcieport");
  ASSERT_FALSE(r->warnings.empty());
  EXPECT_TRUE(Has(r->warnings[0], "0000:01:00.1"));
  auto u = Unhide({kGpu, kAudio});
  ASSERT_TRUE(u);
  EXPECT_EQ(DriverOf(host_, kGpu), "nouveau");
  EXPECT_EQ(DriverOf(host_, kAudio), "snd_hda_intel");
  EXPECT_TRUE(Exists(host_.Path("dev/vfio/5")) == false);
}

TEST_F(HiderTest, NamingEveryMemberIsEnoughWithoutGroup) {
  auto r = Hide({kGpu, kAudio});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->devices.size(), 2u);
}

TEST_F(HiderTest, GroupHideIsAllOrNothing) {
  // The audio function refuses vfio-pci: the GPU must be rolled back too.
  sim_.FailWrite("sys/bus/pci/drivers/snd_hda_intel/unbind", EBUSY);
  std::string before = Snapshot(host_);
  auto r = Hide({kGpu}, {.group = true});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kBusy);
  EXPECT_TRUE(Has(r.error().message, "step unbind"));
  EXPECT_TRUE(Has(r.error().message, "also rolled back 0000:01:00.0"));
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(HiderTest, HostCriticalDevicesNeedForce) {
  struct Case {
    const char* bdf;
    const char* reason;
  };
  host_.WriteFile(
      "proc/net/route",
      "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWind"
      "ow\tIRTT\n"
      "eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
  host_.MakeDir("sys/devices/pci0000:00/0000:00:03.0/net/eth0");
  host_.Symlink("sys/class/net/eth0",
                "sys/devices/pci0000:00/0000:00:03.0/net/eth0");
  host_.Symlink("sys/devices/pci0000:00/0000:00:03.0/net/eth0/device",
                "sys/devices/pci0000:00/0000:00:03.0");
  for (Case c : {Case{kVga, "boot GPU (boot_vga=1)"},
                 Case{kNvme, "/ is mounted from nvme0n1p2"},
                 Case{kNic, "default route via eth0"}}) {
    std::string before = Snapshot(host_);
    auto r = Hide({c.bdf});
    ASSERT_FALSE(r) << c.bdf;
    EXPECT_EQ(r.error().code, ErrorCode::kUnsafe);
    EXPECT_TRUE(Has(r.error().message, c.reason)) << r.error().message;
    EXPECT_TRUE(Has(r.error().message, "use --force if you are sure") ||
                Has(r.error().message, "Use --force if you are sure"));
    EXPECT_EQ(Snapshot(host_), before);
    auto forced = Hide({c.bdf}, {.force = true});
    ASSERT_TRUE(forced) << forced.error().ToString();
    EXPECT_EQ(DriverOf(host_, c.bdf), "vfio-pci");
    ASSERT_FALSE(forced->warnings.empty());
    EXPECT_TRUE(Has(forced->warnings.back(), c.reason));
  }
}

TEST_F(HiderTest, NoIommuGroupRefusesVfioButAllowsPciStub) {
  auto r = Hide({kNoGroup});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_TRUE(Has(r.error().message, "no IOMMU group"));
  EXPECT_TRUE(Has(r.error().message, "--driver pci-stub"));
  auto s = Hide({kNoGroup}, {.driver = "pci-stub"});
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(DriverOf(host_, kNoGroup), "pci-stub");
  EXPECT_EQ(sim_.modules(), std::vector<std::string>{"pci-stub"});
}

TEST_F(HiderTest, LoadsTheStubModuleWhenMissing) {
  FakeHost bare;
  BuildTestHost(bare, /*vfio_loaded=*/false);
  KernelSim sim(bare);
  Hider h(bare.root(), sim, TestConfig());
  auto r = h.Hide({kNic}, {});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(sim.modules(), std::vector<std::string>{"vfio-pci"});
  EXPECT_EQ(DriverOf(bare, kNic), "vfio-pci");
}

TEST_F(HiderTest, ModuleLoadFailureChangesNothing) {
  sim_.FailModule("pci-stub");
  std::string before = Snapshot(host_);
  auto r = Hide({kNic}, {.driver = "pci-stub"});
  ASSERT_FALSE(r);
  EXPECT_TRUE(Has(r.error().message, "modprobe pci-stub"));
  EXPECT_EQ(Snapshot(host_), before);
  EXPECT_TRUE(sim_.writes().empty());
}

TEST_F(HiderTest, PciStubRoundTrip) {
  ASSERT_TRUE(Hide({kNic}, {.driver = "pci-stub"}));
  EXPECT_EQ(DriverOf(host_, kNic), "pci-stub");
  EXPECT_FALSE(Exists(host_.Path("dev/vfio/3")));
  ASSERT_TRUE(Unhide({kNic}));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(OverrideOf(host_, kNic), "(null)");
}

TEST_F(HiderTest, XenPcibackOutsideXenIsRefusedBeforeAnyChange) {
  std::string before = Snapshot(host_);
  auto r = Hide({kNic}, {.driver = "xen-pciback"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_TRUE(Has(r.error().message, "Xen dom0")) << r.error().message;
  EXPECT_TRUE(Has(r.error().message, "--driver vfio-pci"));
  EXPECT_EQ(Snapshot(host_), before);
  EXPECT_TRUE(sim_.writes().empty());
}

TEST_F(HiderTest, XenPcibackUsesSlotsOnceAndRemovesThem) {
  host_.WriteFile("sys/hypervisor/type", "xen\n");  // a Xen dom0
  auto r = Hide({kNic}, {.driver = "xen-pciback"});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(DriverOf(host_, kNic), "pciback");
  EXPECT_EQ(OverrideOf(host_, kNic), "pciback");
  EXPECT_EQ(*ReadFile(host_.Path("sys/bus/pci/drivers/pciback/slots")),
            "0000:00:03.0\n");
  // The slot is written before the probe.
  auto w = sim_.writes();
  auto slot = std::find(w.begin(), w.end(),
                        "sys/bus/pci/drivers/pciback/new_slot=0000:00:03.0");
  auto probe =
      std::find(w.begin(), w.end(), "sys/bus/pci/drivers_probe=0000:00:03.0");
  ASSERT_NE(slot, w.end());
  EXPECT_LT(slot, probe);
  ASSERT_TRUE(Unhide({kNic}));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(*ReadFile(host_.Path("sys/bus/pci/drivers/pciback/slots")), "");
  // A slot that already exists is not written twice.
  host_.WriteFile("sys/bus/pci/drivers/pciback/slots", "0000:00:03.0\n");
  ASSERT_TRUE(Hide({kNic}, {.driver = "xen-pciback"}));
  EXPECT_EQ(*ReadFile(host_.Path("sys/bus/pci/drivers/pciback/slots")),
            "0000:00:03.0\n");
}

TEST_F(HiderTest, EveryFailedKernelWriteRollsBackToTheExactState) {
  // Learn the writes of a successful hide, then fail each in turn.
  std::vector<std::string> writes;
  {
    FakeHost h;
    BuildTestHost(h);
    AddPciback(h);
    KernelSim sim(h);
    ASSERT_TRUE(Hider(h.root(), sim, TestConfig())
                    .Hide({kNic}, {.driver = "xen-pciback"}));
    writes = sim.writes();
  }
  ASSERT_EQ(writes.size(), 4u);
  for (const auto& w : writes) {
    FakeHost h;
    BuildTestHost(h);
    AddPciback(h);
    KernelSim sim(h);
    auto eq = w.find('=');
    sim.FailWrite(w.substr(0, eq), EIO, w.substr(eq + 1));
    std::string before = Snapshot(h);
    auto r = Hider(h.root(), sim, TestConfig())
                 .Hide({kNic}, {.driver = "xen-pciback"});
    ASSERT_FALSE(r) << w;
    EXPECT_EQ(r.error().code, ErrorCode::kIo) << w;
    EXPECT_TRUE(Has(r.error().message, "errno 5")) << r.error().message;
    EXPECT_TRUE(
        Has(r.error().message, "rolled back: the device is on e1000e again"))
        << r.error().message;
    EXPECT_EQ(Snapshot(h), before) << w;
  }
}

TEST_F(HiderTest, ExplicitBindWhenProbeDoesNotBind) {
  // drivers_probe does not promise a bind: devpass asks the stub, once.
  sim_.SetProbeBindsNothing(true);
  auto r = Hide({kNic});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  EXPECT_EQ(sim_.writes().back(),
            "sys/bus/pci/drivers/vfio-pci/bind=0000:00:03.0");
}

TEST_F(HiderTest, StubThatWillNotBindIsRolledBack) {
  sim_.SetProbeBindsNothing(true);
  sim_.FailWrite("sys/bus/pci/drivers/vfio-pci/bind", ENODEV);
  std::string before = Snapshot(host_);
  auto r = Hide({kNic});
  ASSERT_FALSE(r);
  EXPECT_TRUE(Has(r.error().message, "step verify")) << r.error().message;
  EXPECT_TRUE(Has(r.error().message, "dmesg"));
  // Rollback binds e1000e through its bind file; the probe is not needed.
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(HiderTest, PermissionDeniedNamesPathAndAdvice) {
  sim_.FailWrite(
      std::string("sys/bus/pci/devices/") + kNic + "/driver_override", EACCES);
  std::string before = Snapshot(host_);
  auto r = Hide({kNic});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kPermissionDenied);
  EXPECT_TRUE(Has(r.error().message, "driver_override"));
  EXPECT_TRUE(Has(r.error().message, "run devpass as root"));
  EXPECT_TRUE(Has(r.error().message, "step override"));
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(HiderTest, UnhideUnbindFailureKeepsItHidden) {
  ASSERT_TRUE(Hide({kNic}));
  sim_.FailWrite("sys/bus/pci/drivers/vfio-pci/unbind", EBUSY);
  std::string before = Snapshot(host_);
  auto r = Unhide({kNic});
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->devices[0].action, Action::kFailed);
  EXPECT_TRUE(Has(r->devices[0].message, "still hidden"));
  EXPECT_EQ(Snapshot(host_), before);
}

TEST_F(HiderTest, BadAddressesAndMissingDevicesChangeNothing) {
  std::string before = Snapshot(host_);
  for (std::vector<std::string> args :
       {std::vector<std::string>{kNic, "0000:00:1g.0"},
        {kNic, "0000:07:00.0"},
        {"nonsense"},
        {},
        {kRootPort}}) {
    auto r = Hide(args);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().code, ErrorCode::kInternal);
    EXPECT_EQ(Snapshot(host_), before);
  }
  EXPECT_EQ(Hide({"0000:07:00.0"}).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(Hide({"0000:00:1g.0"}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(Hide({kNic}, {.driver = "nouveau"}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Unhide({"0000:07:00.0"}).error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(sim_.writes().empty());
}

TEST_F(HiderTest, ChipsetBridgesWithHeaderTypeZeroAreRefused) {
  // Host and ISA/LPC bridges have header type 0, so the kernel's viability
  // rule does not call them bridges; they are still the chipset.
  host_.AddDevice({.bdf = "0000:00:1f.0",
                   .vendor = 0x8086,
                   .device = 0x2918,
                   .class_code = 0x060100,
                   .driver = "lpc_ich",
                   .iommu_group = 9});
  std::string before = Snapshot(host_);
  for (auto [bdf, kind] : {std::pair{"0000:00:00.0", "host bridge"},
                           std::pair{"0000:00:1f.0", "ISA bridge"}}) {
    auto r = Hide({bdf}, {.force = true});
    ASSERT_FALSE(r) << bdf;
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
    EXPECT_TRUE(Has(r.error().message, kind)) << r.error().message;
    EXPECT_EQ(Snapshot(host_), before);
  }
  EXPECT_TRUE(sim_.writes().empty());
}

TEST_F(HiderTest, LockContentionIsBusy) {
  auto lock = FileLock::Acquire(host_.root());
  ASSERT_TRUE(lock);
  auto r = Hide({kNic});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kBusy);
  EXPECT_TRUE(Has(r.error().message, "another devpass"));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(HiderTest, CorruptLedgerIsAClearError) {
  host_.WriteFile("var/lib/devpass/ledger.json",
                  "{\"version\": 1, \"devices\": [");
  auto r = Hide({kNic});
  ASSERT_FALSE(r);
  EXPECT_TRUE(Has(r.error().message, "ledger.json is corrupt"));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  auto s = MakeHider().Status();
  ASSERT_FALSE(s);
  // Not silently replaced.
  EXPECT_EQ(*ReadFile(host_.Path("var/lib/devpass/ledger.json")),
            "{\"version\": 1, \"devices\": [");
}

TEST_F(HiderTest, StatusShowsDriftAndJournal) {
  ASSERT_TRUE(Hide({kNic}));
  host_.Unbind(kNic);
  host_.Bind(kNic, "e1000e");  // someone rebound it behind devpass's back
  hiding::JournalRecord rec{.op = "hide",
                            .address = *PciAddress::Parse(kEdu),
                            .stub = "vfio-pci",
                            .step = "unbind"};
  ASSERT_TRUE(hiding::Journal(host_.root()).Write(rec));
  auto s = MakeHider().Status();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->hidden.size(), 1u);
  EXPECT_TRUE(s->hidden[0].drifted);
  EXPECT_EQ(s->hidden[0].current_driver, "e1000e");
  ASSERT_EQ(s->pending.size(), 1u);
  EXPECT_EQ(s->pending[0].step, "unbind");
  ASSERT_FALSE(s->warnings.empty());
  // Unhide of a drifted device forgets it without touching the driver.
  (void)hiding::Journal(host_.root()).Remove(*PciAddress::Parse(kEdu));
  auto u = Unhide({kNic});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->devices[0].action, Action::kForgotten);
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(OverrideOf(host_, kNic), "(null)");
}

}  // namespace
}  // namespace devpass::testing
