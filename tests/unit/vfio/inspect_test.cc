// `devpass inspect`'s report, built from the fake.

#include "vfio/inspect.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vfio/container.h"
#include "vfio_test_env.h"

namespace devpass::vfio {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kNvme[] = "0000:01:00.0";

class InspectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.AddHidden(kNvme, 4, FakeMsixDevice(kNvme, 64, true, "0000:01:00.1"));
    env_.SetReservedRegions(4, "0x00000000fee00000 0x00000000feefffff msi\n");
    auto s = OpenVfioDevice(env_.api, env_.root(), Addr(kNvme));
    ASSERT_TRUE(s) << s.error().ToString();
    session_.emplace(std::move(*s));
    report_ = InspectDevice(*session_->container, session_->device);
  }
  VfioTestEnv env_;
  std::optional<VfioSession> session_;
  nlohmann::json report_;
};

TEST_F(InspectTest, JsonDescribesRegions) {
  EXPECT_EQ(report_["device"], kNvme);
  EXPECT_EQ(report_["group"], 4);
  const auto& regions = report_["regions"];
  ASSERT_EQ(regions.size(), 10u);
  EXPECT_EQ(regions[0]["name"], "BAR0");
  EXPECT_EQ(regions[0]["size"], 0x4000);
  EXPECT_EQ(regions[0]["flags"],
            nlohmann::json({"read", "write", "mmap", "caps"}));
  ASSERT_EQ(regions[0]["mmap_areas"].size(), 2u);
  EXPECT_EQ(regions[0]["mmap_areas"][1]["offset"], "0x3000");
  EXPECT_EQ(regions[2]["msix_mappable"], true);
  EXPECT_EQ(regions[6]["name"], "ROM");
  EXPECT_EQ(regions[7]["name"], "CONFIG");
  EXPECT_EQ(regions[9]["type"]["subtype"], "0x1");
  EXPECT_FALSE(regions[7].contains("mmap_areas"));
}

TEST_F(InspectTest, JsonDescribesIrqsResetIommuAndMsix) {
  const auto& irqs = report_["irqs"];
  ASSERT_EQ(irqs.size(), 5u);
  EXPECT_EQ(irqs[0]["name"], "INTx");
  EXPECT_EQ(irqs[0]["flags"],
            nlohmann::json({"eventfd", "maskable", "automasked"}));
  EXPECT_EQ(irqs[2]["name"], "MSI-X");
  EXPECT_EQ(irqs[2]["count"], 64);
  EXPECT_EQ(irqs[2]["flags"], nlohmann::json({"eventfd", "noresize"}));

  EXPECT_EQ(report_["reset"]["supported"], true);
  const auto& hot = report_["reset"]["hot_reset"];
  EXPECT_EQ(hot["supported"], true);
  ASSERT_EQ(hot["devices"].size(), 2u);
  EXPECT_EQ(hot["devices"][0]["address"], kNvme);
  EXPECT_EQ(hot["devices"][0]["group"], 4);
  EXPECT_EQ(hot["devices"][1]["address"], "0000:01:00.1");

  const auto& iommu = report_["iommu"];
  EXPECT_EQ(iommu["backend"], "vfio-type1v2");
  EXPECT_EQ(iommu["page_sizes"], nlohmann::json({"4KiB", "2MiB", "1GiB"}));
  ASSERT_EQ(iommu["iova_ranges"].size(), 2u);
  EXPECT_EQ(iommu["iova_ranges"][0]["end"], "0xfedfffff");
  EXPECT_EQ(iommu["dma_avail"], 65535);
  EXPECT_EQ(report_["reserved_regions"][0]["type"], "msi");
  EXPECT_EQ(report_["reserved_regions"][0]["start"], "0xfee00000");

  const auto& msix = report_["msix"];
  EXPECT_EQ(msix["vectors"], 64);
  EXPECT_EQ(msix["table"]["bar"], 0);
  EXPECT_EQ(msix["table"]["offset"], "0x2000");
  EXPECT_EQ(msix["table"]["size"], 1024);
  EXPECT_EQ(msix["pba"]["offset"], "0x3000");
  EXPECT_EQ(report_["config"]["vendor"], "1b36");
  EXPECT_EQ(report_["config"]["capabilities"][1]["name"], "MSI-X");
}

TEST_F(InspectTest, TextViewShowsTheSameFacts) {
  std::string text = InspectText(report_);
  EXPECT_THAT(text, HasSubstr("0000:01:00.0  (VFIO group 4, vfio-type1v2)"));
  EXPECT_THAT(text, HasSubstr("BAR0        16KiB  read,write,mmap,caps "
                              "mmap-areas[0x0+8KiB 0x3000+4KiB]"));
  EXPECT_THAT(text, HasSubstr("msix-mappable"));
  EXPECT_THAT(text, HasSubstr("MSI-X  count 64"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "MSI-X table: BAR0 at 0x2000 (1024 bytes), PBA: BAR0 at 0x3000"));
  EXPECT_THAT(
      text,
      HasSubstr("hot reset also resets: 0000:01:00.0 (group 4), 0000:01:00.1"));
  EXPECT_THAT(text, HasSubstr("page sizes 4KiB 2MiB 1GiB"));
  EXPECT_THAT(text, HasSubstr("0xfee00000 - 0xfeefffff msi"));
}

TEST(InspectEduTest, NoResetAndNoHotReset) {
  VfioTestEnv env;
  env.AddHidden("0000:00:03.0", 7, FakeEduDevice("0000:00:03.0"));
  auto s = OpenVfioDevice(env.api, env.root(), Addr("0000:00:03.0"));
  ASSERT_TRUE(s);
  auto report = InspectDevice(*s->container, s->device);
  EXPECT_EQ(report["reset"]["supported"], false);
  EXPECT_EQ(report["reset"]["hot_reset"]["supported"], false);
  EXPECT_EQ(report["msi"]["vectors"], 1);
  EXPECT_FALSE(report.contains("msix"));
  // FakeHost gives every group the x86 MSI window.
  ASSERT_EQ(report["reserved_regions"].size(), 1u);
  EXPECT_EQ(report["reserved_regions"][0]["end"], "0xfeefffff");
  std::string text = InspectText(report);
  EXPECT_THAT(text, HasSubstr("Reset: none"));
  EXPECT_THAT(text, HasSubstr("MSI: 1 vector(s), 64-bit"));
  EXPECT_THAT(text,
              HasSubstr("Reserved regions:\n  0xfee00000 - 0xfeefffff msi"));
}

}  // namespace
}  // namespace devpass::vfio
