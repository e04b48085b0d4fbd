// --persist files, restore at boot, and their cleanup.

#include "hiding/persist.h"

#include <gtest/gtest.h>

#include "base/fs.h"
#include "hiding/hider.h"
#include "test_host.h"

namespace devpass::testing {
namespace {

using hiding::DeviceResult;
using hiding::Hider;

class PersistTest : public ::testing::Test {
 protected:
  void SetUp() override { BuildTestHost(host_); }
  Hider MakeHider() { return Hider(host_.root(), sim_, TestConfig()); }
  std::string Read(const std::string& rel) {
    return ReadFile(host_.Path(rel)).value_or("<missing>");
  }
  // What a reboot does to a hidden device when the udev rule is not there.
  void RebootWithoutRule(const std::string& bdf, const std::string& driver) {
    host_.Unbind(bdf);
    host_.WriteFile("sys/bus/pci/devices/" + bdf + "/driver_override",
                    "(null)\n");
    std::filesystem::remove_all(host_.Path("dev/vfio"));
    host_.Bind(bdf, driver);
  }

  FakeHost host_;
  KernelSim sim_{host_};
};

TEST_F(PersistTest, HidePersistWritesFileRuleAndUnit) {
  auto r = MakeHider().Hide({kNic}, {.persist = true});
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->devices[0].persisted);
  EXPECT_NE(Read("etc/devpass/hidden/0000:00:03.0")
                .find("stub=vfio-pci\noriginal_driver=e1000e\n"),
            std::string::npos);
  EXPECT_NE(
      Read("etc/udev/rules.d/61-devpass.rules")
          .find(
              "ACTION==\"add\", SUBSYSTEM==\"pci\", KERNEL==\"0000:00:03.0\", "
              "ATTR{driver_override}=\"vfio-pci\"\n"),
      std::string::npos);
  std::string unit = Read("etc/systemd/system/devpass-restore.service");
  for (const char* line :
       {"Type=oneshot\n", "DefaultDependencies=no\n", "Before=basic.target\n",
        "After=systemd-udevd.service\n",
        "ExecStart=/usr/local/bin/devpass restore\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }
  auto link = ReadLink(host_.Path(
      "etc/systemd/system/sysinit.target.wants/devpass-restore.service"));
  ASSERT_TRUE(link);
  EXPECT_EQ(link->string(), "../devpass-restore.service");
  EXPECT_TRUE(hiding::Ledger::Load(host_.root())->entries()[0].persisted);
}

TEST_F(PersistTest, UnhidePersistRemovesFilesWhenNoneRemain) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {.persist = true}));
  ASSERT_TRUE(
      MakeHider().Hide({kEdu}, {.driver = "pci-stub", .persist = true}));
  std::string rules = Read("etc/udev/rules.d/61-devpass.rules");
  EXPECT_NE(rules.find(
                "KERNEL==\"0000:00:05.0\", ATTR{driver_override}=\"pci-stub\""),
            std::string::npos);
  ASSERT_TRUE(MakeHider().Unhide({kNic}, {.persist = true}));
  rules = Read("etc/udev/rules.d/61-devpass.rules");
  EXPECT_EQ(rules.find("0000:00:03.0"), std::string::npos);
  EXPECT_NE(rules.find("0000:00:05.0"), std::string::npos);
  EXPECT_FALSE(Exists(host_.Path("etc/devpass/hidden/0000:00:03.0")));
  ASSERT_TRUE(MakeHider().Unhide({kEdu}, {.persist = true}));
  EXPECT_FALSE(Exists(host_.Path("etc/udev/rules.d/61-devpass.rules")));
  EXPECT_FALSE(
      Exists(host_.Path("etc/systemd/system/devpass-restore.service")));
  EXPECT_FALSE(Exists(host_.Path(
      "etc/systemd/system/sysinit.target.wants/devpass-restore.service")));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_EQ(DriverOf(host_, kEdu), "");
}

TEST_F(PersistTest, HideWithoutPersistKeepsAPersistedDevicePersisted) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {.persist = true}));
  auto again = MakeHider().Hide({kNic}, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->devices[0].action, DeviceResult::Action::kAlreadyHidden);
  EXPECT_TRUE(again->devices[0].persisted);
  EXPECT_TRUE(Exists(host_.Path("etc/devpass/hidden/0000:00:03.0")));
  // Unhide without --persist: released now, still hidden at the next boot.
  auto u = MakeHider().Unhide({kNic}, {});
  ASSERT_TRUE(u);
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  EXPECT_TRUE(Exists(host_.Path("etc/devpass/hidden/0000:00:03.0")));
  ASSERT_EQ(u->warnings.size(), 1u);
  EXPECT_NE(u->warnings[0].find("still persisted"), std::string::npos);
  auto s = MakeHider().Status();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->persisted_only.size(), 1u);
  EXPECT_EQ(s->persisted_only[0].original_driver, "e1000e");
}

TEST_F(PersistTest, RestoreAfterRebootWithoutRule) {
  ASSERT_TRUE(MakeHider().Hide({kNic}, {.persist = true}));
  RebootWithoutRule(kNic, "e1000e");
  auto r = MakeHider().Restore();
  ASSERT_TRUE(r) << r.error().ToString();
  ASSERT_EQ(r->devices.size(), 1u);
  EXPECT_EQ(r->devices[0].action, DeviceResult::Action::kHidden);
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  // Idempotent.
  auto again = MakeHider().Restore();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->devices[0].action, DeviceResult::Action::kAlreadyHidden);
  ASSERT_TRUE(MakeHider().Unhide({kNic}, {}));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
}

TEST_F(PersistTest, RestoreAtBootWhenTheRuleKeptTheHostDriverAway) {
  // Boot: the udev rule set the override before e1000e could bind, and
  // vfio-pci is not loaded yet: the device is unbound. The persist file
  // still knows it came from e1000e.
  FakeHost boot;
  BuildTestHost(boot, /*vfio_loaded=*/false);
  KernelSim sim(boot);
  boot.Unbind(kNic);
  boot.WriteFile(
      std::string("sys/bus/pci/devices/") + kNic + "/driver_override",
      "vfio-pci\n");
  hiding::Persist persist(boot.root(), "/usr/local/bin/devpass");
  ASSERT_TRUE(persist.Add({*PciAddress::Parse(kNic), "vfio-pci", "e1000e"}));
  ASSERT_TRUE(persist.Add(
      {*PciAddress::Parse("0000:0a:00.0"), "vfio-pci", ""}));  // unplugged
  Hider h(boot.root(), sim, TestConfig());
  auto r = h.Restore();
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(sim.modules(), std::vector<std::string>{"vfio-pci"});
  EXPECT_EQ(DriverOf(boot, kNic), "vfio-pci");
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("0000:0a:00.0 is persisted but does not exist"),
            std::string::npos);
  auto u = h.Unhide({kNic}, {});
  ASSERT_TRUE(u);
  EXPECT_EQ(DriverOf(boot, kNic), "e1000e");
  EXPECT_EQ(OverrideOf(boot, kNic), "(null)");
}

TEST_F(PersistTest, RestoreForgetsNonPersistedHidesOfAnEarlierBoot) {
  ASSERT_TRUE(MakeHider().Hide({kEdu}, {}));
  ASSERT_TRUE(MakeHider().Hide({kNic}, {.persist = true}));
  RebootWithoutRule(kNic, "e1000e");
  host_.Unbind(kEdu);
  host_.WriteFile(
      std::string("sys/bus/pci/devices/") + kEdu + "/driver_override",
      "(null)\n");
  auto r = MakeHider().Restore();
  ASSERT_TRUE(r) << r.error().ToString();
  auto ledger = hiding::Ledger::Load(host_.root());
  ASSERT_EQ(ledger->entries().size(), 1u);
  EXPECT_EQ(ledger->entries()[0].address.ToString(), kNic);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].find("forgot 0000:00:05.0"), std::string::npos);
}

TEST_F(PersistTest, MalformedPersistFileIsNamed) {
  host_.WriteFile("etc/devpass/hidden/0000:00:03.0",
                  "original_driver=e1000e\n");
  auto r = MakeHider().Restore();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("etc/devpass/hidden/0000:00:03.0"),
            std::string::npos);
  EXPECT_NE(r.error().message.find("stub="), std::string::npos);
}

}  // namespace
}  // namespace devpass::testing
