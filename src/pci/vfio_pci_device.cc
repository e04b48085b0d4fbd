#include "pci/vfio_pci_device.h"

#include <fmt/format.h>
#include <linux/vfio.h>

#include <algorithm>

namespace devpass::pci {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint16_t kCapabilityPointer = 0x34;
constexpr uint16_t kRomBar = 0x30;
constexpr uint16_t kCacheLineSize = 0x0c;
constexpr uint16_t kLatencyTimer = 0x0d;
constexpr uint16_t kBist = 0x0f;
constexpr uint16_t kBarEnd = kBar0 + 24;
constexpr uint16_t kStatusCapList = 1 << 4;  // Status bit 4 (§6.2.3)
// Command bits the guest may set (§6.2.2): I/O space, memory space, bus
// master, parity error response, SERR#, interrupt disable.
constexpr uint16_t kCommandWritable = 0x0547;
constexpr uint16_t kCommandIo = 1 << 0;
constexpr uint16_t kCommandMemory = 1 << 1;

// Capability ids (PCI Local Bus 3.0 Appendix H).
constexpr uint8_t kCapPm = 0x01;
constexpr uint8_t kCapMsi = 0x05;
constexpr uint8_t kCapVendor = 0x09;
constexpr uint8_t kCapPcie = 0x10;
constexpr uint8_t kCapMsix = 0x11;

// A trapped piece of a BAR: forwards to the device with BAR-relative
// offsets. Holds a plain pointer: the device drops every registration (and
// so this handler's range) before it goes away.
class BarTrap : public IoHandler {
 public:
  BarTrap(VfioPciDevice* device, size_t bar, uint64_t base)
      : device_(device), bar_(bar), base_(base) {}
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    device_->BarRead(bar_, base_ + offset, data);
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    device_->BarWrite(bar_, base_ + offset, data);
  }

 private:
  VfioPciDevice* device_;
  size_t bar_;
  uint64_t base_;
};

// [start, end) minus a sorted list of holes, as (offset, size) pieces.
std::vector<std::pair<uint64_t, uint64_t>> Complement(
    uint64_t size, std::vector<std::pair<uint64_t, uint64_t>> taken) {
  std::sort(taken.begin(), taken.end());
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t at = 0;
  for (auto [off, len] : taken) {
    if (off > at) out.emplace_back(at, off - at);
    at = std::max(at, off + len);
  }
  if (at < size) out.emplace_back(at, size - at);
  return out;
}

}  // namespace

VfioPciDevice::VfioPciDevice(vfio::Device device, GuestPlatform& platform,
                             PassthroughOptions options)
    : device_(std::move(device)),
      platform_(platform),
      options_(std::move(options)),
      name_(fmt::format("passthrough {}", device_.address().ToString())) {}

Result<std::shared_ptr<VfioPciDevice>> VfioPciDevice::Create(
    vfio::Device device, GuestPlatform& platform, PassthroughOptions options) {
  std::shared_ptr<VfioPciDevice> dev(
      new VfioPciDevice(std::move(device), platform, std::move(options)));
  DP_RETURN_IF_ERROR(dev->Init());
  return dev;
}

VfioPciDevice::~VfioPciDevice() { Shutdown(); }

void VfioPciDevice::Log(const std::string& message) {
  if (options_.log)
    options_.log(fmt::format("{}: {}", device_.address().ToString(), message));
}

Status VfioPciDevice::Init() {
  if (!device_.is_pci()) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("{} is not a PCI device as VFIO sees it", name_));
  }
  DP_ASSIGN_OR_RETURN(std::vector<uint8_t> phys, device_.ReadConfigSpace());
  if (phys.size() < kConfigSize) phys.resize(kConfigSize, 0);
  const uint8_t header_type = phys[kHeaderType] & 0x7f;
  if (header_type != 0) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("{} has header type {} (a bridge); devpass assigns "
                    "endpoints (type 0) only",
                    name_, header_type));
  }
  // Identity, class and subsystem as the device has them; the rest of the
  // header is devpass's.
  for (uint16_t i = 0; i < 0x40; ++i) config_.Set8(i, phys[i]);
  kind_.fill(ByteKind::kPassthrough);
  for (uint16_t i = 0; i < 0x40; ++i) kind_[i] = ByteKind::kShadow;
  kind_[kStatus] = kind_[kStatus + 1] =
      ByteKind::kPassthrough;  // live, RW1C bits
  config_.Set16(kCommand, 0);  // decoding off until the guest turns it on
  config_.SetWritable(kCommand, kCommandWritable & 0xff);
  config_.SetWritable(kCommand + 1, kCommandWritable >> 8);
  config_.Set8(kHeaderType,
               header_type);  // one function: multifunction bit clear
  config_.Set8(kBist, 0);
  config_.SetWritable(kCacheLineSize, 0xff);
  config_.SetWritable(kLatencyTimer, 0xff);
  for (uint16_t i = kBar0; i < kBarEnd; ++i) config_.Set8(i, 0);
  for (uint16_t i = 0x28; i < 0x2c; ++i) config_.Set8(i, 0);  // CardBus CIS
  config_.Set32(kRomBar, 0);  // no expansion ROM: nothing the guest can map
  for (uint16_t i = 0x35; i < 0x3c; ++i) config_.Set8(i, 0);
  config_.Set8(kInterruptLine, 0xff);
  config_.SetWritable(kInterruptLine, 0xff);
  interrupt_pin_ = phys[kInterruptPin] <= 4 ? phys[kInterruptPin] : 0;
  config_.Set8(kInterruptPin, interrupt_pin_);

  for (const VirtualBar& vb : DescribeBars(phys, device_.regions())) {
    BarState b;
    b.vbar = vb;
    const uint16_t reg = static_cast<uint16_t>(kBar0 + 4 * vb.bar.index);
    config_.Set32(reg, vb.FlagBits());
    const uint32_t low = vb.LowMask();
    for (int i = 0; i < 4; ++i)
      config_.SetWritable(reg + i, static_cast<uint8_t>(low >> (8 * i)));
    if (vb.bar.kind == Bar::Kind::kMem64) {
      const uint32_t high = vb.HighMask();
      for (int i = 0; i < 4; ++i) {
        config_.SetWritable(reg + 4 + i, static_cast<uint8_t>(high >> (8 * i)));
      }
    }
    bars_.push_back(std::move(b));
  }
  DP_RETURN_IF_ERROR(InitCapabilities(phys));
  DP_RETURN_IF_ERROR(InitBarMaps());
  return InitInterrupts();
}

Status VfioPciDevice::InitCapabilities(const std::vector<uint8_t>& phys) {
  // The device's list as VFIO shows it (vfio/pci_config.h walks it safely).
  const vfio::PciConfigSummary summary = vfio::ParsePciConfig(phys);
  std::vector<uint8_t> kept;
  for (const vfio::PciCapability& cap : summary.capabilities) {
    const uint8_t at = cap.offset;
    if (cap.id == kCapPm || cap.id == kCapVendor || cap.id == kCapPcie) {
      kept.push_back(at);
      kind_[at] = kind_[at + 1] = ByteKind::kShadow;  // id and our next
    } else if (cap.id == kCapMsi && summary.msi && summary.msi->offset == at) {
      vfio::MsiCapability c = *summary.msi;
      c.max_vectors = std::min(c.max_vectors, 32u);  // §6.8.1.3: at most 32
      const uint16_t len = static_cast<uint16_t>(10 + (c.is_64bit ? 4 : 0) +
                                                 (c.per_vector_mask ? 10 : 0));
      for (uint16_t i = 0; i < len && at + i < kConfigSize; ++i) {
        kind_[at + i] = ByteKind::kShadow;
        config_.Set8(at + i, 0);
      }
      config_.Set8(at, kCapMsi);
      // Read-only: Multiple Message Capable, 64-bit, per-vector masking.
      config_.Set16(at + 2, c.control & 0x018e);
      config_.SetWritable(at + 2, 0x71);  // enable, Multiple Message Enable
      for (int i = 0; i < 4; ++i)
        config_.SetWritable(at + 4 + i, i == 0 ? 0xfc : 0xff);
      const uint16_t data = at + (c.is_64bit ? 12 : 8);
      if (c.is_64bit) {
        for (int i = 0; i < 4; ++i) config_.SetWritable(at + 8 + i, 0xff);
      }
      config_.SetWritable(data, 0xff);
      config_.SetWritable(data + 1, 0xff);
      if (c.per_vector_mask) {
        const uint32_t mask =
            c.max_vectors >= 32 ? ~0u : (1u << c.max_vectors) - 1;
        for (int i = 0; i < 4; ++i) {
          config_.SetWritable(data + 4 + i,
                              static_cast<uint8_t>(mask >> (8 * i)));
        }
      }
      msi_ = c;
      kept.push_back(at);
    } else if (cap.id == kCapMsix && summary.msix &&
               summary.msix->offset == at) {
      const vfio::MsixCapability& c = *summary.msix;
      for (uint16_t i = 0; i < 12; ++i) {
        kind_[at + i] = ByteKind::kShadow;
        config_.Set8(at + i, phys[at + i]);
      }
      config_.Set16(at + 2,
                    c.control & 0x07ff);  // table size; enable and mask off
      config_.SetWritable(at + 3, 0xc0);  // MSI-X Enable, Function Mask
      msix_ = c;
      msix_table_.emplace(c.table_size);
      kept.push_back(at);
    } else {
      // Unlinked: the guest walking the list never sees it. (AF's FLR,
      // PCI-X, EA's fixed BAR addresses, VPD... are not the guest's.)
      kind_[at] = kind_[at + 1] = ByteKind::kZero;
    }
  }
  config_.Set8(kCapabilityPointer, kept.empty() ? 0 : kept.front());
  for (size_t i = 0; i < kept.size(); ++i) {
    config_.Set8(kept[i], phys[kept[i]]);
    config_.Set8(kept[i] + 1, i + 1 < kept.size() ? kept[i + 1] : 0);
  }
  return Ok();
}

Status VfioPciDevice::InitBarMaps() {
  for (size_t i = 0; i < bars_.size(); ++i) {
    BarState& b = bars_[i];
    const uint64_t size = b.vbar.bar.size;
    if (b.vbar.bar.kind == Bar::Kind::kIo) {
      b.trapped.emplace_back(0, size);
      continue;
    }
    const vfio::RegionInfo* region = device_.region(b.vbar.region);
    std::vector<std::pair<uint64_t, uint64_t>> areas;
    if (region && (region->flags & VFIO_REGION_INFO_FLAG_MMAP)) {
      if (region->sparse_areas) {
        for (const auto& a : *region->sparse_areas)
          areas.emplace_back(a.offset, a.size);
      } else {
        areas.emplace_back(0, size);
      }
    }
    // The MSI-X table and PBA pages trap even when VFIO would let us map
    // them (MSIX_MAPPABLE): the table must be emulated.
    std::vector<std::pair<uint64_t, uint64_t>> holes;
    if (msix_ && msix_table_) {
      auto hole = [&](uint64_t off, uint64_t len) {
        const uint64_t start = off / kPage * kPage;
        const uint64_t end = (off + len + kPage - 1) / kPage * kPage;
        holes.emplace_back(start, end - start);
      };
      if (msix_->table_bar == b.vbar.bar.index)
        hole(msix_->table_offset, msix_table_->table_bytes());
      if (msix_->pba_bar == b.vbar.bar.index)
        hole(msix_->pba_offset, msix_table_->pba_bytes());
    }
    std::vector<std::pair<uint64_t, uint64_t>> mapped;
    for (auto [off, len] : areas) {
      uint64_t start = (off + kPage - 1) / kPage * kPage;
      const uint64_t end = std::min(size, (off + len) / kPage * kPage);
      // Cut the holes out of [start, end).
      std::vector<std::pair<uint64_t, uint64_t>> pieces;
      for (auto [hoff, hlen] : holes) {
        if (hoff + hlen <= start || hoff >= end) continue;
        if (hoff > start) pieces.emplace_back(start, hoff - start);
        start = std::max(start, hoff + hlen);
      }
      if (start < end) pieces.emplace_back(start, end - start);
      for (auto [poff, plen] : pieces) {
        auto m = device_.MapRegion(b.vbar.region, poff, plen);
        if (!m) {
          Log(fmt::format(
              "BAR{} [{:#x}, +{:#x}) cannot be mmapped ({}); it will trap",
              b.vbar.bar.index, poff, plen, m.error().message));
          continue;
        }
        mapped.emplace_back(poff, plen);
        b.mapped.push_back(MappedArea{poff, std::move(*m)});
      }
    }
    b.trapped = Complement(size, mapped);
  }
  return Ok();
}

Status VfioPciDevice::PlaceBars(BarAllocator& allocator) {
  std::lock_guard lock(mu_);
  for (BarState& b : bars_) {
    DP_ASSIGN_OR_RETURN(uint64_t address, allocator.Allocate(b.vbar, name_));
    const uint16_t reg = static_cast<uint16_t>(kBar0 + 4 * b.vbar.bar.index);
    config_.Set32(reg, static_cast<uint32_t>(address) | b.vbar.FlagBits());
    if (b.vbar.bar.kind == Bar::Kind::kMem64) {
      config_.Set32(reg + 4, static_cast<uint32_t>(address >> 32));
    }
  }
  UpdateDecoding();
  return Ok();
}

uint32_t VfioPciDevice::ShadowRead32(uint16_t offset) const {
  std::array<uint8_t, 4> b{};
  config_.Read(offset, b);
  return static_cast<uint32_t>(LoadLe(b));
}

uint64_t VfioPciDevice::ProgrammedAddress(const BarState& b) const {
  const uint16_t reg = static_cast<uint16_t>(kBar0 + 4 * b.vbar.bar.index);
  const bool io = b.vbar.bar.kind == Bar::Kind::kIo;
  uint64_t address = ShadowRead32(reg) & (io ? ~0x3u : ~0xfu);
  if (b.vbar.bar.kind == Bar::Kind::kMem64) {
    address |= static_cast<uint64_t>(ShadowRead32(reg + 4)) << 32;
  }
  return address;
}

void VfioPciDevice::UpdateDecoding() {
  const uint16_t command =
      static_cast<uint16_t>(ShadowRead32(kCommand) & 0xffff);
  for (BarState& b : bars_) {
    const bool io = b.vbar.bar.kind == Bar::Kind::kIo;
    const bool decode =
        !shut_down_ && (command & (io ? kCommandIo : kCommandMemory));
    const uint64_t address = ProgrammedAddress(b);
    if (!decode) {
      UnmapBar(b);
      continue;
    }
    if (!b.live.empty() && b.live_address == address) continue;
    UnmapBar(b);
    if (!FitsWindow(options_.windows, b.vbar, address)) {
      ++stats_.refused_bars;
      Log(fmt::format(
          "the guest placed BAR{} ({:#x} bytes) at {:#x}, outside the "
          "guest's PCI windows; it stays unmapped",
          b.vbar.bar.index, b.vbar.bar.size, address));
      continue;
    }
    MapBar(b, address);
  }
}

void VfioPciDevice::MapBar(BarState& b, uint64_t address) {
  const size_t index = static_cast<size_t>(&b - bars_.data());
  const std::string what =
      fmt::format("{} BAR{}", device_.address().ToString(), b.vbar.bar.index);
  std::vector<RegistrationPtr> live;
  Status status = Ok();
  for (MappedArea& m : b.mapped) {
    auto r = platform_.MapMemory(address + m.offset, m.mapping.size(),
                                 m.mapping.data(), what);
    if (!r) {
      status = tl::unexpected(r.error());
      break;
    }
    live.push_back(std::move(*r));
  }
  for (auto [off, len] : b.trapped) {
    if (!status) break;
    auto handler = std::make_shared<BarTrap>(this, index, off);
    auto r = b.vbar.bar.kind == Bar::Kind::kIo
                 ? platform_.TrapPio(static_cast<uint16_t>(address + off),
                                     static_cast<uint16_t>(len), handler, what)
                 : platform_.TrapMmio(address + off, len, handler, what);
    if (!r) {
      status = tl::unexpected(r.error());
      break;
    }
    live.push_back(std::move(*r));
  }
  if (!status) {
    ++stats_.refused_bars;
    Log(fmt::format("BAR{} not mapped at {:#x}: {}", b.vbar.bar.index, address,
                    status.error().message));
    return;  // `live` drops what was set up
  }
  ++stats_.bar_remaps;
  b.live = std::move(live);
  b.live_address = address;
}

void VfioPciDevice::UnmapBar(BarState& b) {
  while (!b.live.empty()) b.live.pop_back();  // reverse order of creation
  b.live_address = 0;
}

VfioPciDevice::BarState* VfioPciDevice::BarAt(uint16_t config_offset) {
  for (BarState& b : bars_) {
    const uint16_t reg = static_cast<uint16_t>(kBar0 + 4 * b.vbar.bar.index);
    const uint16_t end = reg + (b.vbar.bar.kind == Bar::Kind::kMem64 ? 8 : 4);
    if (config_offset >= reg && config_offset < end) return &b;
  }
  return nullptr;
}

void VfioPciDevice::ConfigRead(uint16_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  ++stats_.config_reads;
  if (offset >= kConfigSize || offset + data.size() > kConfigSize) {
    std::fill(data.begin(), data.end(), 0xff);
    return;
  }
  std::vector<uint8_t> live(data.size(), 0xff);
  bool need_live = false;
  for (size_t i = 0; i < data.size(); ++i)
    need_live |= kind_[offset + i] == ByteKind::kPassthrough;
  if (need_live && !device_.ReadConfig(offset, live))
    std::fill(live.begin(), live.end(), 0xff);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint16_t at = static_cast<uint16_t>(offset + i);
    switch (kind_[at]) {
      case ByteKind::kShadow:
        config_.Read(at, data.subspan(i, 1));
        break;
      case ByteKind::kZero:
        data[i] = 0;
        break;
      case ByteKind::kPassthrough:
        data[i] = live[i];
        if (at == kStatus) {  // the capability list is ours
          data[i] = static_cast<uint8_t>(
              (data[i] & ~kStatusCapList) |
              (ShadowRead32(kCapabilityPointer) & 0xff ? kStatusCapList : 0));
        }
        break;
    }
  }
}

void VfioPciDevice::ConfigWrite(uint16_t offset,
                                std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  ++stats_.config_writes;
  if (offset >= kConfigSize || offset + data.size() > kConfigSize || shut_down_)
    return;
  // Pass-through bytes go to the device in contiguous runs (VFIO filters
  // what a user may write); shadow bytes land in config_ under its masks.
  size_t i = 0;
  while (i < data.size()) {
    const ByteKind k = kind_[offset + i];
    size_t j = i;
    while (j < data.size() && kind_[offset + j] == k) ++j;
    const uint16_t at = static_cast<uint16_t>(offset + i);
    if (k == ByteKind::kPassthrough) {
      if (auto s = device_.WriteConfig(at, data.subspan(i, j - i)); !s) {
        Log(fmt::format("config write at {:#x} refused by VFIO: {}", at,
                        s.error().message));
      }
    } else if (k == ByteKind::kShadow) {
      config_.Write(at, data.subspan(i, j - i));
    }
    i = j;
  }
  auto touches = [&](uint16_t start, uint16_t len) {
    return offset < start + len && start < offset + data.size();
  };
  if (touches(kCommand, 2)) {
    // Bus master and INTx disable matter to the device itself; the decode
    // bits keep the device's view honest (vfio-pci zaps mmaps when memory
    // decode is off).
    const auto command =
        static_cast<uint16_t>(ShadowRead32(kCommand) & kCommandWritable);
    if (auto s = device_.WriteConfig16(kCommand, command); !s) {
      Log(fmt::format("command register write refused by VFIO: {}",
                      s.error().message));
    }
  }
  if (touches(kCommand, 2) || touches(kBar0, 24)) UpdateDecoding();
  if ((msi_ && touches(msi_->offset, 24)) ||
      (msix_ && touches(msix_->offset + 2, 2))) {
    UpdateInterrupts();
  }
}

std::vector<Bar> VfioPciDevice::Bars() const {
  std::lock_guard lock(mu_);
  std::vector<Bar> out;
  for (const BarState& b : bars_) out.push_back(b.vbar.bar);
  return out;
}

std::string VfioPciDevice::Name() const { return name_; }

uint64_t VfioPciDevice::BarAddress(int index) const {
  std::lock_guard lock(mu_);
  for (const BarState& b : bars_) {
    if (b.vbar.bar.index == index) return ProgrammedAddress(b);
  }
  return 0;
}

bool VfioPciDevice::BarLive(int index) const {
  std::lock_guard lock(mu_);
  for (const BarState& b : bars_) {
    if (b.vbar.bar.index == index) return !b.live.empty();
  }
  return false;
}

PassthroughStats VfioPciDevice::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void VfioPciDevice::BarRead(size_t bar, uint64_t offset,
                            std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  ++stats_.bar_traps;
  const BarState& b = bars_.at(bar);
  const int index = b.vbar.bar.index;
  if (msix_ && msix_->table_bar == index && offset >= msix_->table_offset &&
      offset < msix_->table_offset + msix_table_->table_bytes()) {
    msix_table_->Read(offset - msix_->table_offset, data);
    return;
  }
  if (!device_.ReadRegion(b.vbar.region, offset, data))
    std::fill(data.begin(), data.end(), 0xff);
}

void VfioPciDevice::BarWrite(size_t bar, uint64_t offset,
                             std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  ++stats_.bar_traps;
  const BarState& b = bars_.at(bar);
  const int index = b.vbar.bar.index;
  if (msix_ && msix_->table_bar == index && offset >= msix_->table_offset &&
      offset < msix_->table_offset + msix_table_->table_bytes()) {
    for (uint32_t v : msix_table_->Write(offset - msix_->table_offset, data))
      SyncMsixVector(v);
    return;
  }
  if (msix_ && msix_->pba_bar == index && offset >= msix_->pba_offset &&
      offset < msix_->pba_offset + msix_table_->pba_bytes()) {
    return;  // the PBA is read-only (§6.8.2.10)
  }
  (void)device_.WriteRegion(b.vbar.region, offset, data);
}

void VfioPciDevice::Shutdown() {
  std::lock_guard lock(mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto it = bars_.rbegin(); it != bars_.rend(); ++it) UnmapBar(*it);
  LeaveMode();
}

}  // namespace devpass::pci
