// Container and Group: the setup order, group sharing, TYPE1 fallback, and
// the errors that tell the user what to do.

#include "vfio/container.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/vfio.h>

#include "vfio_test_env.h"

namespace devpass::vfio {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kEdu[] = "0000:00:03.0";

// The ioctl lines of the log, without per-region/IRQ queries.
std::vector<std::string> SetupCalls(const FakeVfioApi& api) {
  std::vector<std::string> out;
  for (const auto& l : api.log) {
    if (l.starts_with("GET_REGION_INFO") || l.starts_with("GET_IRQ_INFO") ||
        l.starts_with("CHECK_EXTENSION")) {
      continue;
    }
    out.push_back(l);
  }
  return out;
}

TEST(ContainerTest, SetupFollowsTheKernelsOrder) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  auto session = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
  ASSERT_TRUE(session) << session.error().ToString();
  EXPECT_THAT(
      SetupCalls(*env.api),
      ElementsAre("open /dev/vfio/vfio -> 100", "GET_API_VERSION 100",
                  "open /dev/vfio/7 -> 101", "GROUP_GET_STATUS 101",
                  "GROUP_SET_CONTAINER 101 100", "SET_IOMMU 100 type=3",
                  "IOMMU_GET_INFO 100", "GET_DEVICE_FD 101 0000:00:03.0 -> 102",
                  "DEVICE_GET_INFO 102"));
  EXPECT_EQ(session->container->iommu_type(),
            static_cast<uint32_t>(VFIO_TYPE1v2_IOMMU));
  EXPECT_EQ(session->container->name(), "vfio-type1v2");
  EXPECT_THAT(session->container->extensions(),
              ElementsAre("TYPE1", "TYPE1v2", "UNMAP_ALL"));
  EXPECT_EQ(session->device.group().number(), 7);
  EXPECT_EQ(session->device.regions().size(), 9u);
  EXPECT_EQ(session->device.irqs().size(), 5u);
}

TEST(ContainerTest, DevicesOfOneGroupShareItAndSetIommuHappensOnce) {
  VfioTestEnv env;
  env.AddHidden("0000:01:00.0", 4, FakeMsixDevice("0000:01:00.0"));
  env.AddHidden("0000:01:00.1", 4, FakeMsixDevice("0000:01:00.1"));
  env.AddHidden("0000:02:00.0", 5, FakeMsixDevice("0000:02:00.0"));
  auto container = Container::Open(env.api, env.root());
  ASSERT_TRUE(container) << container.error().ToString();
  auto a = (*container)->OpenDevice(Addr("0000:01:00.0"));
  auto b = (*container)->OpenDevice(Addr("0000:01:00.1"));
  auto c = (*container)->OpenDevice(Addr("0000:02:00.0"));
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(&a->group(), &b->group());
  EXPECT_NE(&a->group(), &c->group());
  EXPECT_EQ(env.api->Calls("open /dev/vfio/4").size(), 1u);
  EXPECT_EQ(env.api->Calls("open /dev/vfio/5").size(), 1u);
  EXPECT_EQ(env.api->Calls("SET_IOMMU").size(), 1u);
  EXPECT_EQ(env.api->Calls("GROUP_SET_CONTAINER").size(), 2u);
  // IOMMU info is refreshed after each group: a group can shrink the ranges.
  EXPECT_EQ(env.api->Calls("IOMMU_GET_INFO").size(), 2u);
  // The shared group closes only after its last device.
  *a = std::move(*c);  // drops device 01:00.0, keeps group 4 through b
  EXPECT_TRUE(env.api->Calls("GROUP_UNSET_CONTAINER").empty());
}

TEST(ContainerTest, FallsBackToType1WithoutV2) {
  VfioTestEnv env;
  env.api->extensions = {VFIO_TYPE1_IOMMU};
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  auto session = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
  ASSERT_TRUE(session) << session.error().ToString();
  EXPECT_EQ(session->container->name(), "vfio-type1");
  EXPECT_THAT(env.api->Calls("SET_IOMMU"), ElementsAre("SET_IOMMU 100 type=1"));
}

TEST(ContainerTest, NoType1AtAllIsExplained) {
  VfioTestEnv env;
  env.api->extensions = {};
  auto c = Container::Open(env.api, env.root());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kUnsupported);
  EXPECT_THAT(c.error().message, HasSubstr("modprobe vfio_iommu_type1"));
}

TEST(ContainerTest, WrongApiVersionIsRefused) {
  VfioTestEnv env;
  env.api->api_version = 1;
  auto c = Container::Open(env.api, env.root());
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message, HasSubstr("API version is 1"));
}

TEST(ContainerErrorsTest, DeviceNotHiddenSaysRunDevpassHide) {
  VfioTestEnv env;
  env.host.AddDevice(
      {.bdf = "0000:05:00.0", .driver = "e1000e", .iommu_group = 9});
  auto s = OpenVfioDevice(env.api, env.root(), Addr("0000:05:00.0"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kConflict);
  EXPECT_THAT(s.error().message, HasSubstr("bound to e1000e, not vfio-pci"));
  EXPECT_THAT(s.error().message, HasSubstr("run `devpass hide 0000:05:00.0`"));
  EXPECT_TRUE(env.api->log.empty())
      << "nothing VFIO is touched before the checks pass";

  env.host.AddDevice({.bdf = "0000:06:00.0", .iommu_group = 10});
  auto unbound = OpenVfioDevice(env.api, env.root(), Addr("0000:06:00.0"));
  ASSERT_FALSE(unbound);
  EXPECT_THAT(unbound.error().message, HasSubstr("it has no driver"));

  auto missing = OpenVfioDevice(env.api, env.root(), Addr("0000:42:00.0"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(missing.error().message, HasSubstr("devpass list"));
}

TEST(ContainerErrorsTest, NoIommuGroupMeansTheIommuIsOff) {
  VfioTestEnv env;
  env.host.AddDevice({.bdf = "0000:05:00.0", .driver = "vfio-pci"});
  auto s = OpenVfioDevice(env.api, env.root(), Addr("0000:05:00.0"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
  EXPECT_THAT(s.error().message, HasSubstr("intel_iommu=on"));
}

TEST(ContainerErrorsTest, MissingDevVfioSaysLoadTheModule) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  env.api->FailNext("OPEN_CONTAINER", ENOENT);
  auto s = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kNotFound);
  EXPECT_THAT(s.error().message, HasSubstr("/dev/vfio/vfio does not exist"));
  EXPECT_THAT(s.error().message, HasSubstr("modprobe vfio-pci"));
}

TEST(ContainerErrorsTest, RealKernelApiOnAFakeRootFailsCleanly) {
  // What `devpass inspect` does on a machine without /dev/vfio.
  VfioTestEnv env;
  env.host.AddDevice({.bdf = kEdu, .driver = "vfio-pci", .iommu_group = 7});
  auto s = OpenVfioDevice(NewKernelVfioApi(), env.root(), Addr(kEdu));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().sys_errno, ENOENT);
  EXPECT_THAT(s.error().message,
              HasSubstr("does not exist: the VFIO driver is not loaded"));
}

TEST(ContainerErrorsTest, GroupNodeMissingOrForbiddenOrBusy) {
  VfioTestEnv env;
  env.host.AddDevice({.bdf = kEdu,
                      .driver = "vfio-pci",
                      .iommu_group = 8});  // no fake group 8
  auto missing = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message, HasSubstr("/dev/vfio/8 does not exist"));

  VfioTestEnv env2;
  env2.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  env2.api->FailNext("OPEN_GROUP", EACCES);
  auto denied = OpenVfioDevice(env2.api, env2.root(), Addr(kEdu));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, ErrorCode::kPermissionDenied);
  EXPECT_THAT(denied.error().message,
              HasSubstr("run as root or chown the group node"));

  env2.api->FailNext("OPEN_GROUP", EBUSY);
  auto busy = OpenVfioDevice(env2.api, env2.root(), Addr(kEdu));
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().code, ErrorCode::kBusy);
  EXPECT_THAT(busy.error().message,
              HasSubstr("already open in another process"));
}

TEST(ContainerErrorsTest, NonViableGroupNamesTheBlockingMembers) {
  VfioTestEnv env;
  env.AddHidden("0000:01:00.0", 3, FakeMsixDevice("0000:01:00.0"));
  env.host.AddDevice(
      {.bdf = "0000:01:00.1", .driver = "e1000e", .iommu_group = 3});
  env.api->SetGroupViable(3, false);
  auto s = OpenVfioDevice(env.api, env.root(), Addr("0000:01:00.0"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kConflict);
  EXPECT_THAT(s.error().message, HasSubstr("IOMMU group 3 is not viable"));
  EXPECT_THAT(s.error().message, HasSubstr("0000:01:00.1 (e1000e)"));
  EXPECT_THAT(s.error().message, HasSubstr("devpass hide"));
  EXPECT_TRUE(env.api->Calls("GROUP_SET_CONTAINER").empty());
}

TEST(ContainerErrorsTest, SetIommuEpermMeansNoInterruptRemapping) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  env.api->FailNext("SET_IOMMU", EPERM);
  auto s = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnsafe);
  EXPECT_EQ(s.error().sys_errno, EPERM);
  EXPECT_THAT(s.error().message, HasSubstr("interrupt remapping"));
  EXPECT_THAT(s.error().message,
              HasSubstr("allow_unsafe_interrupts=1 at your own risk"));
  // The group was detached again and everything closed.
  EXPECT_EQ(env.api->Calls("GROUP_UNSET_CONTAINER").size(), 1u);
  EXPECT_EQ(env.api->open_fds(), 0u);
}

TEST(ContainerErrorsTest, DeviceFdRefusalsAreExplained) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  env.api->FailNext("GET_DEVICE_FD", EBUSY);
  auto s = OpenVfioDevice(env.api, env.root(), Addr(kEdu));
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("already open through VFIO"));
}

TEST(ContainerTest, LastGroupLeavingDropsTheIommuAndNextGroupSetsItAgain) {
  VfioTestEnv env;
  env.AddHidden(kEdu, 7, FakeEduDevice(kEdu));
  auto container = Container::Open(env.api, env.root());
  ASSERT_TRUE(container);
  {
    auto dev = (*container)->OpenDevice(Addr(kEdu));
    ASSERT_TRUE(dev);
    EXPECT_TRUE((*container)->iommu_set());
  }
  EXPECT_FALSE((*container)->iommu_set());
  auto again = (*container)->OpenDevice(Addr(kEdu));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(env.api->Calls("SET_IOMMU").size(), 2u);
}

}  // namespace
}  // namespace devpass::vfio
