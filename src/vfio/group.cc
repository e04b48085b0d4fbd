#include "vfio/group.h"

#include <fmt/format.h>

#include <charconv>

#include "base/fs.h"
#include "vfio/container.h"

namespace devpass::vfio {
namespace {

std::optional<uint64_t> ParseHex(std::string_view s) {
  if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

Group::~Group() {
  if (fd_.valid()) {
    // Detach explicitly (closing would too) so the order is visible and the
    // container learns the group left before its own fd can be closed.
    (void)container_->api().UnsetContainer(fd_.get());
    fd_.Reset();
  }
  container_->OnGroupClosed(number_);
}

std::vector<ReservedRegion> ParseReservedRegions(std::string_view text) {
  std::vector<ReservedRegion> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    auto words = SplitWords(line);
    if (words.size() < 3) continue;
    auto start = ParseHex(words[0]);
    auto end = ParseHex(words[1]);
    if (!start || !end || *end < *start) continue;
    out.push_back({*start, *end, words[2]});
  }
  return out;
}

std::vector<ReservedRegion> ReadReservedRegions(const Root& root, int group) {
  auto text = ReadFile(
      root.Sys(fmt::format("kernel/iommu_groups/{}/reserved_regions", group)));
  if (!text) return {};
  return ParseReservedRegions(*text);
}

}  // namespace devpass::vfio
