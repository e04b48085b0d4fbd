#include "base/pci_address.h"

#include <gtest/gtest.h>

namespace devpass {
namespace {

TEST(PciAddressTest, ParsesFullForm) {
  auto a = PciAddress::Parse("0001:3a:1f.7");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->domain(), 1u);
  EXPECT_EQ(a->bus(), 0x3a);
  EXPECT_EQ(a->device(), 0x1f);
  EXPECT_EQ(a->function(), 7);
  EXPECT_EQ(a->ToString(), "0001:3a:1f.7");
}

TEST(PciAddressTest, ShortFormMeansDomainZero) {
  auto a = PciAddress::Parse("01:00.0");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ToString(), "0000:01:00.0");
}

TEST(PciAddressTest, UpperCaseIsAccepted) {
  auto a = PciAddress::Parse("0000:AF:00.1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ToString(), "0000:af:00.1");
}

TEST(PciAddressTest, RejectsMalformedWithHelpfulMessage) {
  for (const char* bad :
       {"", "0000", "0000:01:00", "0000:01:20.0", "0000:01:00.8", "zz:00.0",
        "0000:100:00.0", "00000:01:00.0", "0000:01:00.0x", "01.00:0"}) {
    auto a = PciAddress::Parse(bad);
    ASSERT_FALSE(a) << bad;
    EXPECT_EQ(a.error().code, ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(a.error().message.find("DDDD:BB:DD.F"), std::string::npos);
  }
}

TEST(PciAddressTest, OrdersByDomainBusDeviceFunction) {
  EXPECT_LT(*PciAddress::Parse("0000:00:1f.0"),
            *PciAddress::Parse("0000:01:00.0"));
  EXPECT_LT(*PciAddress::Parse("0000:01:00.0"),
            *PciAddress::Parse("0000:01:00.1"));
}

}  // namespace
}  // namespace devpass
