// The lab measuring programs' number arguments (bench/lab/programs).

#include "bench/lab/programs/number_arg.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace devpass::bench {
namespace {

TEST(ParseUnsigned, DecimalWithinTheRange) {
  EXPECT_EQ(ParseUnsigned("5201", 1, 65535), 5201u);
  EXPECT_EQ(ParseUnsigned("1", 1, 1), 1u);
  EXPECT_EQ(ParseUnsigned("18446744073709551615", 0, UINT64_MAX), UINT64_MAX);
}

TEST(ParseUnsigned, RejectsWhatStrtoullWouldBend) {
  EXPECT_EQ(ParseUnsigned("-1", 0, UINT64_MAX),
            std::nullopt);  // strtoull: 2^64-1
  EXPECT_EQ(ParseUnsigned("+3", 0, 10), std::nullopt);
  EXPECT_EQ(ParseUnsigned(" 3", 0, 10), std::nullopt);
  EXPECT_EQ(ParseUnsigned("12x", 0, 100), std::nullopt);  // strtoull: 12
  EXPECT_EQ(ParseUnsigned("", 0, 10), std::nullopt);
  EXPECT_EQ(ParseUnsigned(nullptr, 0, 10), std::nullopt);
  EXPECT_EQ(ParseUnsigned("18446744073709551616", 0, UINT64_MAX),
            std::nullopt);  // ERANGE
}

TEST(ParseUnsigned, RejectsOutOfRange) {
  EXPECT_EQ(ParseUnsigned("0", 1, 10), std::nullopt);
  EXPECT_EQ(ParseUnsigned("11", 1, 10), std::nullopt);
  EXPECT_EQ(ParseUnsigned("65536", 1, 65535), std::nullopt);
}

TEST(NumberArg, TheValueOrUsageSayingTheRange) {
  auto usage = [](const std::string& why) -> void {
    throw std::runtime_error(why);
  };
  EXPECT_EQ(NumberArg("--port", "5201", 1, 65535, usage), 5201u);
  try {
    NumberArg("--port", "0", 1, 65535, usage);
    FAIL() << "usage was not called";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "--port wants a number from 1 to 65535");
  }
}

}  // namespace
}  // namespace devpass::bench
