#include "host/config_space.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "base/fs.h"
#include "host/pci_regs.h"

namespace devpass::host {
namespace {

// Header register bits (PCI Local Bus 3.0 §6.1, pci_regs.h); offsets are in
// host/pci_regs.h.
constexpr uint16_t kStatusCapList = 0x0010;  // PCI_STATUS_CAP_LIST
constexpr uint8_t kHeaderLayoutMask = 0x7f;
constexpr uint8_t kHeaderCardBus = 2;

// Capabilities live after the 64-byte header, dword aligned; the low two
// bits of a pointer are reserved (§6.7). 48 = (256 - 64) / 4, the most that
// fit, so a longer walk must be looping.
constexpr size_t kFirstCapOffset = 0x40;
constexpr size_t kStdConfigSize = 0x100;
constexpr int kMaxStdCaps = 48;
constexpr uint8_t kCapPointerMask = 0xfc;

// Extended capabilities: from 0x100, 32-bit header {id:16, version:4,
// next:12} (PCIe Base Spec §7.6.3). (4096 - 256) / 4 bounds the walk.
constexpr size_t kExtCapStart = 0x100;
constexpr int kMaxExtCaps = (4096 - 256) / 4;
constexpr uint32_t kExtNextMask = 0xffc;

// Capability register offsets and bits, named as in pci_regs.h.
constexpr size_t kPmPmc = 2;                     // PCI_PM_PMC
constexpr size_t kPmCtrl = 4;                    // PCI_PM_CTRL
constexpr uint16_t kPmCapVersionMask = 0x0007;   // PCI_PM_CAP_VER_MASK
constexpr uint16_t kPmCapD1 = 0x0200;            // PCI_PM_CAP_D1
constexpr uint16_t kPmCapD2 = 0x0400;            // PCI_PM_CAP_D2
constexpr unsigned kPmCapPmeShift = 11;          // PCI_PM_CAP_PME_SHIFT
constexpr uint16_t kPmCtrlNoSoftReset = 0x0008;  // PCI_PM_CTRL_NO_SOFT_RESET
constexpr uint16_t kPmCtrlStateMask = 0x0003;    // PCI_PM_CTRL_STATE_MASK

constexpr size_t kMsiFlags = 2;             // PCI_MSI_FLAGS
constexpr uint16_t kMsiEnable = 0x0001;     // PCI_MSI_FLAGS_ENABLE
constexpr uint16_t kMsiQmaskMask = 0x000e;  // PCI_MSI_FLAGS_QMASK
constexpr uint16_t kMsi64Bit = 0x0080;      // PCI_MSI_FLAGS_64BIT
constexpr uint16_t kMsiMaskBit = 0x0100;    // PCI_MSI_FLAGS_MASKBIT

constexpr size_t kMsixFlags = 2;                  // PCI_MSIX_FLAGS
constexpr size_t kMsixTable = 4;                  // PCI_MSIX_TABLE
constexpr size_t kMsixPba = 8;                    // PCI_MSIX_PBA
constexpr uint16_t kMsixQsize = 0x07ff;           // PCI_MSIX_FLAGS_QSIZE
constexpr uint16_t kMsixMaskAll = 0x4000;         // PCI_MSIX_FLAGS_MASKALL
constexpr uint16_t kMsixEnable = 0x8000;          // PCI_MSIX_FLAGS_ENABLE
constexpr uint32_t kMsixBirMask = 0x7;            // PCI_MSIX_TABLE_BIR
constexpr uint32_t kMsixOffsetMask = 0xfffffff8;  // PCI_MSIX_TABLE_OFFSET

constexpr size_t kExpFlags = 2;                 // PCI_EXP_FLAGS
constexpr size_t kExpDevCap = 4;                // PCI_EXP_DEVCAP
constexpr size_t kExpLnkCap = 0x0c;             // PCI_EXP_LNKCAP
constexpr size_t kExpLnkSta = 0x12;             // PCI_EXP_LNKSTA
constexpr uint16_t kExpFlagsVersMask = 0x000f;  // PCI_EXP_FLAGS_VERS
constexpr uint16_t kExpFlagsTypeMask = 0x00f0;  // PCI_EXP_FLAGS_TYPE
constexpr uint32_t kExpDevCapFlr = 0x10000000;  // PCI_EXP_DEVCAP_FLR
constexpr uint32_t kExpLnkSpeedMask = 0x000f;   // PCI_EXP_LNKCAP_SLS
constexpr uint32_t kExpLnkWidthMask = 0x03f0;   // PCI_EXP_LNKCAP_MLW
constexpr unsigned kExpLnkWidthShift = 4;

constexpr size_t kAcsCap = 4;        // PCI_ACS_CAP
constexpr size_t kAcsCtrl = 6;       // PCI_ACS_CTRL
constexpr uint16_t kAcsSv = 0x0001;  // PCI_ACS_SV
constexpr uint16_t kAcsTb = 0x0002;  // PCI_ACS_TB
constexpr uint16_t kAcsRr = 0x0004;  // PCI_ACS_RR
constexpr uint16_t kAcsCr = 0x0008;  // PCI_ACS_CR
constexpr uint16_t kAcsUf = 0x0010;  // PCI_ACS_UF
constexpr uint16_t kAcsEc = 0x0020;  // PCI_ACS_EC
constexpr uint16_t kAcsDt = 0x0040;  // PCI_ACS_DT

constexpr size_t kSriovInitialVf = 0x0c;  // PCI_SRIOV_INITIAL_VF
constexpr size_t kSriovTotalVf = 0x0e;    // PCI_SRIOV_TOTAL_VF
constexpr size_t kSriovNumVf = 0x10;      // PCI_SRIOV_NUM_VF
constexpr size_t kSriovVfOffset = 0x14;   // PCI_SRIOV_VF_OFFSET
constexpr size_t kSriovVfStride = 0x16;   // PCI_SRIOV_VF_STRIDE
constexpr size_t kSriovVfDid = 0x1a;      // PCI_SRIOV_VF_DID

constexpr size_t kRebarCap = 4;                  // PCI_REBAR_CAP
constexpr size_t kRebarCtrl = 8;                 // PCI_REBAR_CTRL
constexpr size_t kRebarEntrySize = 8;            // one CAP + CTRL pair
constexpr uint32_t kRebarCtrlBarIdx = 0x0007;    // PCI_REBAR_CTRL_BAR_IDX
constexpr uint32_t kRebarCtrlNbarMask = 0x00e0;  // PCI_REBAR_CTRL_NBAR_MASK
constexpr unsigned kRebarCtrlNbarShift = 5;
constexpr uint32_t kRebarCtrlSizeMask = 0x3f00;  // PCI_REBAR_CTRL_BAR_SIZE
constexpr unsigned kRebarCtrlSizeShift = 8;
constexpr unsigned kMaxBars = 6;
// CAP bit n (4..31) = 2^(n+16) bytes (bit 4 = 1 MiB); CTRL bit n (16..31)
// extends the list to 2^(n+32) bytes (PCIe 4.0 ECN).
constexpr uint64_t kOneMiB = uint64_t{1} << 20;

// Bounds-checked little-endian reads: nullopt past the end of the data.
class Bytes {
 public:
  explicit Bytes(std::span<const uint8_t> b) : b_(b) {}
  std::optional<uint8_t> U8(size_t off) const {
    if (off >= b_.size()) return std::nullopt;
    return b_[off];
  }
  std::optional<uint16_t> U16(size_t off) const {
    if (off + 2 > b_.size() || off + 2 < off) return std::nullopt;
    return static_cast<uint16_t>(b_[off] | (b_[off + 1] << 8));
  }
  std::optional<uint32_t> U32(size_t off) const {
    if (off + 4 > b_.size() || off + 4 < off) return std::nullopt;
    return static_cast<uint32_t>(b_[off]) |
           static_cast<uint32_t>(b_[off + 1]) << 8 |
           static_cast<uint32_t>(b_[off + 2]) << 16 |
           static_cast<uint32_t>(b_[off + 3]) << 24;
  }
  size_t size() const { return b_.size(); }

 private:
  std::span<const uint8_t> b_;
};

CapabilityDetail ParsePm(const Bytes& b, size_t off) {
  auto pmc = b.U16(off + kPmPmc);
  auto ctrl = b.U16(off + kPmCtrl);
  if (!pmc || !ctrl) return {};
  PowerManagementCap pm;
  pm.version = static_cast<uint8_t>(*pmc & kPmCapVersionMask);
  pm.d1_supported = (*pmc & kPmCapD1) != 0;
  pm.d2_supported = (*pmc & kPmCapD2) != 0;
  pm.pme_support = static_cast<uint8_t>(*pmc >> kPmCapPmeShift);
  pm.no_soft_reset = (*ctrl & kPmCtrlNoSoftReset) != 0;
  pm.power_state = static_cast<uint8_t>(*ctrl & kPmCtrlStateMask);
  return pm;
}

CapabilityDetail ParseMsi(const Bytes& b, size_t off) {
  auto flags = b.U16(off + kMsiFlags);
  if (!flags) return {};
  MsiCap msi;
  msi.enabled = (*flags & kMsiEnable) != 0;
  // Encodings above 5 (32 vectors) are reserved; clamp so a garbage value
  // cannot claim more than the spec allows.
  unsigned mmc = (*flags & kMsiQmaskMask) >> 1;
  msi.max_vectors = 1u << (mmc > 5 ? 5 : mmc);
  msi.is_64bit = (*flags & kMsi64Bit) != 0;
  msi.per_vector_masking = (*flags & kMsiMaskBit) != 0;
  return msi;
}

CapabilityDetail ParseMsiX(const Bytes& b, size_t off) {
  auto flags = b.U16(off + kMsixFlags);
  auto table = b.U32(off + kMsixTable);
  auto pba = b.U32(off + kMsixPba);
  if (!flags || !table || !pba) return {};
  MsiXCap x;
  x.enabled = (*flags & kMsixEnable) != 0;
  x.function_masked = (*flags & kMsixMaskAll) != 0;
  x.table_size = (*flags & kMsixQsize) + 1u;
  x.table_bar = static_cast<uint8_t>(*table & kMsixBirMask);
  x.table_offset = *table & kMsixOffsetMask;
  x.pba_bar = static_cast<uint8_t>(*pba & kMsixBirMask);
  x.pba_offset = *pba & kMsixOffsetMask;
  return x;
}

CapabilityDetail ParsePcie(const Bytes& b, size_t off) {
  auto flags = b.U16(off + kExpFlags);
  auto devcap = b.U32(off + kExpDevCap);
  if (!flags || !devcap) return {};
  PciExpressCap e;
  e.version = static_cast<uint8_t>(*flags & kExpFlagsVersMask);
  e.type = static_cast<PcieDeviceType>((*flags & kExpFlagsTypeMask) >> 4);
  e.flr = (*devcap & kExpDevCapFlr) != 0;
  // Root-complex integrated functions have no link; their link registers
  // are reserved (PCIe Base Spec §7.5.3.6).
  bool linkless = e.type == PcieDeviceType::kRcIntegratedEndpoint ||
                  e.type == PcieDeviceType::kRcEventCollector;
  auto lnkcap = b.U32(off + kExpLnkCap);
  auto lnksta = b.U16(off + kExpLnkSta);
  if (!linkless && lnkcap && lnksta) {
    e.has_link = true;
    e.max_link_speed = static_cast<uint8_t>(*lnkcap & kExpLnkSpeedMask);
    e.max_link_width =
        static_cast<uint8_t>((*lnkcap & kExpLnkWidthMask) >> kExpLnkWidthShift);
    e.link_speed = static_cast<uint8_t>(*lnksta & kExpLnkSpeedMask);
    e.link_width =
        static_cast<uint8_t>((*lnksta & kExpLnkWidthMask) >> kExpLnkWidthShift);
  }
  return e;
}

CapabilityDetail ParseAcs(const Bytes& b, size_t off) {
  auto cap = b.U16(off + kAcsCap);
  auto ctrl = b.U16(off + kAcsCtrl);
  if (!cap || !ctrl) return {};
  AcsCap a;
  a.source_validation = (*cap & kAcsSv) != 0;
  a.translation_blocking = (*cap & kAcsTb) != 0;
  a.request_redirect = (*cap & kAcsRr) != 0;
  a.completion_redirect = (*cap & kAcsCr) != 0;
  a.upstream_forwarding = (*cap & kAcsUf) != 0;
  a.egress_control = (*cap & kAcsEc) != 0;
  a.direct_translated = (*cap & kAcsDt) != 0;
  a.control = *ctrl;
  return a;
}

CapabilityDetail ParseSriov(const Bytes& b, size_t off) {
  auto initial = b.U16(off + kSriovInitialVf);
  auto total = b.U16(off + kSriovTotalVf);
  auto num = b.U16(off + kSriovNumVf);
  auto offset = b.U16(off + kSriovVfOffset);
  auto stride = b.U16(off + kSriovVfStride);
  auto did = b.U16(off + kSriovVfDid);
  if (!initial || !total || !num || !offset || !stride || !did) return {};
  return SrIovCap{*initial, *total, *num, *offset, *stride, *did};
}

CapabilityDetail ParseRebar(const Bytes& b, size_t off) {
  auto first_ctrl = b.U32(off + kRebarCtrl);
  if (!first_ctrl) return {};
  unsigned nbars = (*first_ctrl & kRebarCtrlNbarMask) >> kRebarCtrlNbarShift;
  if (nbars > kMaxBars) nbars = kMaxBars;
  ResizableBarCap r;
  for (unsigned i = 0; i < nbars; ++i) {
    auto cap = b.U32(off + kRebarCap + i * kRebarEntrySize);
    auto ctrl = b.U32(off + kRebarCtrl + i * kRebarEntrySize);
    if (!cap || !ctrl) break;
    ResizableBarCap::Bar bar;
    bar.index = static_cast<uint8_t>(*ctrl & kRebarCtrlBarIdx);
    for (unsigned bit = 4; bit < 32; ++bit) {
      if (*cap & (1u << bit))
        bar.supported_sizes.push_back(kOneMiB << (bit - 4));
    }
    for (unsigned bit = 16; bit < 32; ++bit) {
      if (*ctrl & (1u << bit))
        bar.supported_sizes.push_back(kOneMiB << (bit + 12));
    }
    bar.current_size = kOneMiB
                       << ((*ctrl & kRebarCtrlSizeMask) >> kRebarCtrlSizeShift);
    r.bars.push_back(std::move(bar));
  }
  return r;
}

CapabilityDetail ParseStd(CapabilityId id, const Bytes& b, size_t off) {
  switch (id) {
    case CapabilityId::kPowerManagement:
      return ParsePm(b, off);
    case CapabilityId::kMsi:
      return ParseMsi(b, off);
    case CapabilityId::kMsiX:
      return ParseMsiX(b, off);
    case CapabilityId::kPciExpress:
      return ParsePcie(b, off);
    default:
      return {};
  }
}

CapabilityDetail ParseExt(ExtCapabilityId id, const Bytes& b, size_t off) {
  switch (id) {
    case ExtCapabilityId::kAcs:
      return ParseAcs(b, off);
    case ExtCapabilityId::kSrIov:
      return ParseSriov(b, off);
    case ExtCapabilityId::kResizableBar:
      return ParseRebar(b, off);
    default:
      return {};
  }
}

void WalkStandard(std::span<const uint8_t> bytes, ConfigSpace* cs) {
  Bytes b(bytes);
  size_t ptr_reg = (cs->header_type & kHeaderLayoutMask) == kHeaderCardBus
                       ? pci_regs::kCardBusCapList
                       : pci_regs::kCapList;
  auto first = b.U8(ptr_reg);
  if (!first) {
    cs->problems.push_back("config space too short for the capability pointer");
    return;
  }
  size_t limit = std::min(b.size(), kStdConfigSize);
  // Parse through a view ending at 0x100, so a standard capability never
  // reads into the extended space.
  Bytes std_view(bytes.first(limit));
  std::set<size_t> seen;
  size_t ptr = *first & kCapPointerMask;
  for (int n = 0; ptr != 0; ++n) {
    if (n >= kMaxStdCaps || seen.count(ptr)) {
      cs->problems.push_back(
          fmt::format("capability list loops at 0x{:02x}", ptr));
      return;
    }
    if (ptr < kFirstCapOffset) {
      cs->problems.push_back(fmt::format(
          "capability pointer 0x{:02x} points into the header", ptr));
      return;
    }
    if (ptr + 2 > limit) {
      cs->problems.push_back(
          fmt::format("capability at 0x{:02x} lies beyond the {} bytes read",
                      ptr, b.size()));
      return;
    }
    seen.insert(ptr);
    auto id = static_cast<CapabilityId>(*b.U8(ptr));
    Capability c;
    c.id = static_cast<uint16_t>(id);
    c.offset = static_cast<uint16_t>(ptr);
    c.name = CapabilityName(id);
    // Parse from a view ending at 0x100 so a standard capability never reads
    // into the extended space.
    c.detail = ParseStd(id, std_view, ptr);
    cs->capabilities.push_back(std::move(c));
    ptr = *b.U8(ptr + 1) & kCapPointerMask;
  }
}

void WalkExtended(const Bytes& b, ConfigSpace* cs) {
  auto header = b.U32(kExtCapStart);
  // All zeros: no extended capabilities; all ones: the function does not
  // decode extended config space (PCIe Base Spec §7.6.3).
  if (!header || *header == 0 || *header == 0xffffffff) return;
  std::set<size_t> seen;
  size_t off = kExtCapStart;
  for (int n = 0; off != 0; ++n) {
    if (n >= kMaxExtCaps || seen.count(off)) {
      cs->problems.push_back(
          fmt::format("extended capability list loops at 0x{:03x}", off));
      return;
    }
    auto hdr = b.U32(off);
    if (!hdr) {
      cs->problems.push_back(fmt::format(
          "extended capability at 0x{:03x} lies beyond the {} bytes read", off,
          b.size()));
      return;
    }
    if (*hdr == 0) return;  // empty slot ends the list
    seen.insert(off);
    auto id = static_cast<ExtCapabilityId>(*hdr & 0xffff);
    Capability c;
    c.extended = true;
    c.id = static_cast<uint16_t>(id);
    c.offset = static_cast<uint16_t>(off);
    c.version = static_cast<uint8_t>((*hdr >> 16) & 0xf);
    c.name = ExtCapabilityName(id);
    c.detail = ParseExt(id, b, off);
    cs->capabilities.push_back(std::move(c));
    size_t next = (*hdr >> 20) & kExtNextMask;
    if (next != 0 && next < kExtCapStart) {
      cs->problems.push_back(fmt::format(
          "extended capability at 0x{:03x} points below 0x100 (0x{:03x})", off,
          next));
      return;
    }
    off = next;
  }
}

}  // namespace

const Capability* ConfigSpace::Find(CapabilityId id) const {
  for (const auto& c : capabilities) {
    if (!c.extended && c.id == static_cast<uint16_t>(id)) return &c;
  }
  return nullptr;
}

const Capability* ConfigSpace::Find(ExtCapabilityId id) const {
  for (const auto& c : capabilities) {
    if (c.extended && c.id == static_cast<uint16_t>(id)) return &c;
  }
  return nullptr;
}

ConfigSpace ParseConfigSpace(std::span<const uint8_t> bytes) {
  Bytes b(bytes);
  ConfigSpace cs;
  cs.size = bytes.size();
  cs.vendor_id = b.U16(pci_regs::kVendorId).value_or(0xffff);
  cs.device_id = b.U16(pci_regs::kDeviceId).value_or(0xffff);
  cs.status = b.U16(pci_regs::kStatus).value_or(0);
  cs.header_type = b.U8(pci_regs::kHeaderType).value_or(0);
  cs.has_capability_list = (cs.status & kStatusCapList) != 0;
  if (bytes.size() <= kFirstCapOffset) {
    if (cs.has_capability_list) {
      cs.problems.push_back(
          fmt::format("only {} bytes of config space readable; run as root to "
                      "see capabilities",
                      bytes.size()));
    }
    return cs;
  }
  if (cs.has_capability_list) WalkStandard(bytes, &cs);
  if (bytes.size() > kExtCapStart) WalkExtended(b, &cs);
  return cs;
}

Result<ConfigSpace> ReadConfigSpace(const Root& root,
                                    const PciAddress& address) {
  auto path =
      root.Sys(fmt::format("bus/pci/devices/{}/config", address.ToString()));
  DP_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadBytes(path, 4096));
  return ParseConfigSpace(bytes);
}

}  // namespace devpass::host
