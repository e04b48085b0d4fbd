#pragma once

// Command-line numbers for the lab's measuring programs (netperf, blkperf).
// Header-only: the programs are built statically by tests/lab/build with g++
// alone, and the unit tests include it too.

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

namespace devpass::bench {

// `text` as a decimal number in [min, max]; nullopt for anything else: an
// empty string, a sign, trailing characters, an overflow, or out of range
// (strtoull alone would take "-1" as 2^64-1 and "12x" as 12).
inline std::optional<uint64_t> ParseUnsigned(const char* text, uint64_t min,
                                             uint64_t max) {
  if (text == nullptr || text[0] < '0' || text[0] > '9') return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (*end != '\0' || errno != 0 || v < min || v > max) return std::nullopt;
  return v;
}

// The value of `flag` for a program's options: `text` as above, or
// usage(why) (a function that does not return) saying which range it wants.
template <typename Usage>
uint64_t NumberArg(const std::string& flag, const char* text, uint64_t min,
                   uint64_t max, Usage usage) {
  const std::optional<uint64_t> v = ParseUnsigned(text, min, max);
  if (!v) {
    usage(flag + " wants a number from " + std::to_string(min) + " to " +
          std::to_string(max));
  }
  return *v;
}

}  // namespace devpass::bench
