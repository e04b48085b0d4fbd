#include "pci/bar_layout.h"

#include <fmt/format.h>

#include "pci/address_space.h"

namespace devpass::pci {
namespace {

constexpr uint64_t kPage = 4096;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

uint32_t VirtualBar::FlagBits() const {
  switch (bar.kind) {
    case Bar::Kind::kIo:
      return 0x1;
    case Bar::Kind::kMem32:
      return bar.prefetchable ? 0x8 : 0x0;
    case Bar::Kind::kMem64:
      return bar.prefetchable ? 0xc : 0x4;
  }
  return 0;
}

uint32_t VirtualBar::LowMask() const {
  const uint64_t size_mask = ~(bar.size - 1);
  const uint32_t flag_mask = bar.kind == Bar::Kind::kIo ? ~0x3u : ~0xfu;
  return static_cast<uint32_t>(size_mask) & flag_mask;
}

uint32_t VirtualBar::HighMask() const {
  if (bar.kind != Bar::Kind::kMem64) return 0;
  return static_cast<uint32_t>(~(bar.size - 1) >> 32);
}

std::vector<VirtualBar> DescribeBars(
    std::span<const uint8_t> config,
    std::span<const vfio::RegionInfo> regions) {
  std::vector<VirtualBar> bars;
  for (int i = 0; i < 6; ++i) {
    const size_t off = kBar0 + 4 * static_cast<size_t>(i);
    if (off + 4 > config.size()) break;
    const auto reg = static_cast<uint32_t>(LoadLe(config.subspan(off, 4)));
    const uint64_t size =
        static_cast<size_t>(i) < regions.size() ? regions[i].size : 0;
    const bool io = reg & 1;
    const bool is64 = !io && ((reg >> 1) & 3) == 2;
    if (size != 0 && (size & (size - 1)) == 0) {
      VirtualBar vb;
      vb.region = static_cast<uint32_t>(i);
      vb.bar.index = i;
      vb.bar.size = size;
      vb.bar.kind = io     ? Bar::Kind::kIo
                    : is64 ? Bar::Kind::kMem64
                           : Bar::Kind::kMem32;
      vb.bar.prefetchable = !io && (reg & 0x8);
      bars.push_back(vb);
    }
    if (is64) ++i;  // the next register is this BAR's upper half
  }
  return bars;
}

bool FitsWindow(const BarWindows& w, const VirtualBar& vb, uint64_t address) {
  const uint64_t size = vb.bar.size;
  auto inside = [&](uint64_t start, uint64_t end) {
    return address >= start && address < end && size <= end - address;
  };
  switch (vb.bar.kind) {
    case Bar::Kind::kIo:
      return inside(w.io_start, w.io_end);
    case Bar::Kind::kMem32:
      return inside(w.mmio32_start, w.mmio32_end);
    case Bar::Kind::kMem64:
      return inside(w.mmio32_start, w.mmio32_end) ||
             inside(w.mmio64_start, w.mmio64_end);
  }
  return false;
}

Result<uint64_t> BarAllocator::Allocate(const VirtualBar& vb,
                                        const std::string& device) {
  const uint64_t size = vb.bar.size;
  uint64_t* next = &next32_;
  uint64_t end = windows_.mmio32_end;
  const char* window = "32-bit MMIO";
  uint64_t align = size < kPage ? kPage : size;
  if (vb.bar.kind == Bar::Kind::kIo) {
    next = &next_io_;
    end = windows_.io_end;
    window = "I/O port";
    align = size;
  } else if (vb.bar.kind == Bar::Kind::kMem64) {
    next = &next64_;
    end = windows_.mmio64_end;
    window = "64-bit MMIO";
  }
  const uint64_t address = AlignUp(*next, align);
  if (address < *next || address >= end || size > end - address) {
    return MakeError(
        ErrorCode::kConflict,
        fmt::format("{}: BAR{} ({:#x} bytes) does not fit in the guest's "
                    "{} window; assign fewer devices to this guest",
                    device, vb.bar.index, size, window));
  }
  *next =
      address + (vb.bar.kind == Bar::Kind::kIo ? size : AlignUp(size, kPage));
  return address;
}

}  // namespace devpass::pci
