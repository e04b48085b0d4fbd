// The kernel simulation's rules, and the real Kernel against a fake tree.

#include "hiding/kernel.h"

#include <gtest/gtest.h>

#include "base/fs.h"
#include "test_host.h"

namespace devpass::testing {
namespace {

class KernelSimTest : public ::testing::Test {
 protected:
  void SetUp() override { BuildTestHost(host_); }
  std::filesystem::path P(const std::string& rel) { return host_.Path(rel); }
  FakeHost host_;
  KernelSim sim_{host_};
};

TEST_F(KernelSimTest, OverrideStoresAndClears) {
  auto p = P(std::string("sys/bus/pci/devices/") + kNic + "/driver_override");
  ASSERT_TRUE(sim_.WriteSysfs(p, "vfio-pci\n"));
  EXPECT_EQ(OverrideOf(host_, kNic), "vfio-pci");
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");  // writing it does not unbind
  ASSERT_TRUE(sim_.WriteSysfs(p, "\n"));
  EXPECT_EQ(OverrideOf(host_, kNic), "(null)");
}

TEST_F(KernelSimTest, BindAndUnbindFollowTheKernelsRules) {
  auto unbind = [&](const std::string& d) {
    return P("sys/bus/pci/drivers/" + d + "/unbind");
  };
  auto bind = [&](const std::string& d) {
    return P("sys/bus/pci/drivers/" + d + "/bind");
  };
  auto wrong = sim_.WriteSysfs(unbind("nvme"), kNic);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().sys_errno, ENODEV);
  EXPECT_EQ(sim_.WriteSysfs(bind("e1000e"), kNic).error().sys_errno, EBUSY);
  ASSERT_TRUE(sim_.WriteSysfs(unbind("e1000e"), kNic));
  EXPECT_EQ(DriverOf(host_, kNic), "");
  // vfio-pci's table is empty: no bind without an override.
  EXPECT_EQ(sim_.WriteSysfs(bind("vfio-pci"), kNic).error().sys_errno, ENODEV);
  ASSERT_TRUE(sim_.WriteSysfs(
      P(std::string("sys/bus/pci/devices/") + kNic + "/driver_override"),
      "vfio-pci"));
  // The override keeps e1000e away even though its table matches.
  EXPECT_EQ(sim_.WriteSysfs(bind("e1000e"), kNic).error().sys_errno, ENODEV);
  ASSERT_TRUE(sim_.WriteSysfs(P("sys/bus/pci/drivers_probe"), kNic));
  EXPECT_EQ(DriverOf(host_, kNic), "vfio-pci");
  EXPECT_TRUE(Exists(P("dev/vfio/3")));
  ASSERT_TRUE(sim_.WriteSysfs(unbind("vfio-pci"), kNic));
  EXPECT_FALSE(Exists(P("dev/vfio/3")));
}

TEST_F(KernelSimTest, ProbeWithoutOverrideUsesIdTables) {
  host_.Unbind(kNic);
  ASSERT_TRUE(sim_.WriteSysfs(P("sys/bus/pci/drivers_probe"), kNic));
  EXPECT_EQ(DriverOf(host_, kNic), "e1000e");
  // edu matches no driver: stays unbound.
  ASSERT_TRUE(sim_.WriteSysfs(P("sys/bus/pci/drivers_probe"), kEdu));
  EXPECT_EQ(DriverOf(host_, kEdu), "");
}

TEST_F(KernelSimTest, PcibackNeedsASlot) {
  AddPciback(host_);
  auto dev = std::string("sys/bus/pci/devices/") + kEdu;
  ASSERT_TRUE(sim_.WriteSysfs(P(dev + "/driver_override"), "pciback"));
  ASSERT_TRUE(sim_.WriteSysfs(P("sys/bus/pci/drivers_probe"), kEdu));
  EXPECT_EQ(DriverOf(host_, kEdu), "");
  ASSERT_TRUE(sim_.WriteSysfs(P("sys/bus/pci/drivers/pciback/new_slot"), kEdu));
  ASSERT_TRUE(sim_.WriteSysfs(P("sys/bus/pci/drivers_probe"), kEdu));
  EXPECT_EQ(DriverOf(host_, kEdu), "pciback");
  ASSERT_TRUE(
      sim_.WriteSysfs(P("sys/bus/pci/drivers/pciback/remove_slot"), kEdu));
  EXPECT_EQ(*ReadFile(P("sys/bus/pci/drivers/pciback/slots")), "");
}

TEST_F(KernelSimTest, FaultsAndModules) {
  sim_.FailWrite("sys/bus/pci/drivers_probe", EIO);
  auto r = sim_.WriteSysfs(P("sys/bus/pci/drivers_probe"), kNic);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sys_errno, EIO);
  EXPECT_FALSE(Exists(P("sys/bus/pci/drivers/pci-stub")));
  ASSERT_TRUE(sim_.LoadModule("pci-stub"));
  EXPECT_TRUE(Exists(P("sys/bus/pci/drivers/pci-stub/bind")));
  sim_.FailModule("xen-pciback");
  EXPECT_FALSE(sim_.LoadModule("xen-pciback"));
  EXPECT_FALSE(Exists(P("sys/bus/pci/drivers/pciback")));
}

TEST(RealKernelTest, WritesFilesInAFakeTree) {
  FakeHost host;
  host.AddDevice({.bdf = kNic, .driver = "e1000e", .iommu_group = 3});
  hiding::RealKernel kernel(host.root());
  auto p = host.Path(std::string("sys/bus/pci/devices/") + kNic +
                     "/driver_override");
  ASSERT_TRUE(kernel.WriteSysfs(p, "vfio-pci\n"));
  EXPECT_EQ(*ReadFile(p), "vfio-pci\n");
  auto missing =
      kernel.WriteSysfs(host.Path("sys/bus/pci/drivers/nope/bind"), kNic);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sys_errno, ENOENT);
  EXPECT_NE(missing.error().message.find("drivers/nope/bind"),
            std::string::npos);
}

TEST(RealKernelTest, RefusesToLoadModulesUnderAnotherRoot) {
  FakeHost host;
  hiding::RealKernel kernel(host.root());
  auto r = kernel.LoadModule("vfio-pci");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("module vfio-pci is not loaded under " +
                                   host.dir().string()),
            std::string::npos);
}

TEST(StubDriverTest, FindsByUserOrDriverName) {
  EXPECT_EQ(hiding::FindStub("xen-pciback")->driver, "pciback");
  EXPECT_EQ(hiding::FindStub("pciback")->module, "xen-pciback");
  EXPECT_TRUE(hiding::FindStub("vfio-pci")->vfio);
  auto bad = hiding::FindStub("nouveau");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace devpass::testing
