#include "host/pci_resources.h"

#include <fmt/format.h>

#include <charconv>

#include "base/fs.h"

namespace devpass::host {
namespace {

// Lines 0..6: six BARs and the ROM. Later lines are bridge windows or VF
// BARs, which describe other devices' space.
constexpr int kReportedResources = kRomResourceIndex + 1;

bool ParseHex(std::string_view word, uint64_t* out) {
  if (word.size() > 2 && word[0] == '0' && (word[1] == 'x' || word[1] == 'X')) {
    word.remove_prefix(2);
  }
  auto [ptr, ec] =
      std::from_chars(word.data(), word.data() + word.size(), *out, 16);
  return !word.empty() && ec == std::errc() && ptr == word.data() + word.size();
}

}  // namespace

std::string_view BarKindName(BarKind kind) {
  switch (kind) {
    case BarKind::kIo:
      return "io";
    case BarKind::kMem32:
      return "mem32";
    case BarKind::kMem64:
      return "mem64";
  }
  return "?";
}

std::vector<Bar> ParseResources(std::string_view text) {
  std::vector<Bar> out;
  int index = 0;
  while (!text.empty() && index < kReportedResources) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text =
        nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    int this_index = index++;
    auto words = SplitWords(line);
    uint64_t start = 0, end = 0, flags = 0;
    if (words.size() != 3 || !ParseHex(words[0], &start) ||
        !ParseHex(words[1], &end) || !ParseHex(words[2], &flags)) {
      continue;
    }
    if (end <= start && start == 0) continue;  // unused slot
    if (end < start) continue;                 // garbage
    if ((flags & (kIoResourceIo | kIoResourceMem)) == 0) continue;
    Bar bar;
    bar.index = this_index;
    bar.start = start;
    bar.size = end - start + 1;
    bar.is_rom = this_index == kRomResourceIndex;
    if (flags & kIoResourceIo) {
      bar.kind = BarKind::kIo;
    } else {
      bar.kind = (flags & kIoResourceMem64) ? BarKind::kMem64 : BarKind::kMem32;
      bar.prefetchable = (flags & kIoResourcePrefetch) != 0;
    }
    out.push_back(bar);
  }
  return out;
}

Result<std::vector<Bar>> ReadBars(const Root& root, const PciAddress& address) {
  DP_ASSIGN_OR_RETURN(std::string text,
                      ReadFile(root.Sys(fmt::format(
                          "bus/pci/devices/{}/resource", address.ToString()))));
  return ParseResources(text);
}

std::string HumanSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B",   "KiB", "MiB", "GiB",
                                           "TiB", "PiB", "EiB"};
  int unit = 0;
  uint64_t v = bytes;
  // Exact units only: BARs are powers of two, and "1.5 MiB" would hide a
  // size that is not.
  while (v >= 1024 && v % 1024 == 0 && unit < 6) {
    v /= 1024;
    ++unit;
  }
  return fmt::format("{} {}", v, kUnits[unit]);
}

}  // namespace devpass::host
