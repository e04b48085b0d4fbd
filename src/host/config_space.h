#pragma once

// Typed parsing of a function's configuration space, as the kernel exposes it
// in <dev>/config (256 bytes for conventional PCI, 4096 for PCI Express; only
// the first 64 bytes for unprivileged readers). Parsing never reads out of
// bounds: truncated or garbage input yields fewer capabilities and a note in
// `problems`, never a crash.
//
// References: PCI Local Bus Specification 3.0 §6 (header, standard
// capability list §6.7, PM, MSI §6.8.1, MSI-X §6.8.2), PCI Express Base
// Specification (PCIe capability §7.5.3, extended capabilities from 0x100
// §7.6), register values from include/uapi/linux/pci_regs.h.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"

namespace devpass::host {

// Standard capability ids (PCI_CAP_ID_* in pci_regs.h).
enum class CapabilityId : uint8_t {
  kPowerManagement = 0x01,
  kAgp = 0x02,
  kVpd = 0x03,
  kSlotId = 0x04,
  kMsi = 0x05,
  kCompactPciHotSwap = 0x06,
  kPciX = 0x07,
  kHyperTransport = 0x08,
  kVendorSpecific = 0x09,
  kDebugPort = 0x0a,
  kCompactPciCentralResource = 0x0b,
  kHotPlug = 0x0c,
  kBridgeSubsystemVendor = 0x0d,
  kAgp8x = 0x0e,
  kSecureDevice = 0x0f,
  kPciExpress = 0x10,
  kMsiX = 0x11,
  kSata = 0x12,
  kAdvancedFeatures = 0x13,
  kEnhancedAllocation = 0x14,
  kFlatteningPortalBridge = 0x15,
};

// Extended capability ids (PCI_EXT_CAP_ID_* in pci_regs.h).
enum class ExtCapabilityId : uint16_t {
  kAer = 0x0001,
  kVirtualChannel = 0x0002,
  kDeviceSerialNumber = 0x0003,
  kPowerBudgeting = 0x0004,
  kRootComplexLinkDeclaration = 0x0005,
  kRootComplexInternalLink = 0x0006,
  kRootComplexEventCollector = 0x0007,
  kMultiFunctionVc = 0x0008,
  kVirtualChannel9 = 0x0009,
  kRcrb = 0x000a,
  kVendorSpecific = 0x000b,
  kConfigAccessCorrelation = 0x000c,
  kAcs = 0x000d,
  kAri = 0x000e,
  kAts = 0x000f,
  kSrIov = 0x0010,
  kMrIov = 0x0011,
  kMulticast = 0x0012,
  kPageRequest = 0x0013,
  kResizableBar = 0x0015,
  kDynamicPowerAllocation = 0x0016,
  kTph = 0x0017,
  kLtr = 0x0018,
  kSecondaryPcie = 0x0019,
  kPmux = 0x001a,
  kPasid = 0x001b,
  kLnReq = 0x001c,
  kDpc = 0x001d,
  kL1PmSubstates = 0x001e,
  kPtm = 0x001f,
  kMPcie = 0x0020,
  kFrsQueueing = 0x0021,
  kReadinessTimeReporting = 0x0022,
  kDvsec = 0x0023,
  kVfResizableBar = 0x0024,
  kDataLinkFeature = 0x0025,
  kPhysicalLayer16 = 0x0026,
  kLaneMargining = 0x0027,
  kHierarchyId = 0x0028,
  kNpem = 0x0029,
  kPhysicalLayer32 = 0x002a,
  kAlternateProtocol = 0x002b,
  kSfi = 0x002c,
  kDoe = 0x002e,
  kIde = 0x0030,
};

std::string CapabilityName(CapabilityId id);        // "MSI-X", "Unknown (0x1f)"
std::string ExtCapabilityName(ExtCapabilityId id);  // "ACS", "Unknown (0x0042)"

// PCI Power Management capability (PCI PM 1.2 §3.2).
struct PowerManagementCap {
  uint8_t version = 0;        // PMC bits 2:0
  bool d1_supported = false;  // PMC bit 9
  bool d2_supported = false;  // PMC bit 10
  uint8_t pme_support = 0;  // PMC bits 15:11, one bit per D0/D1/D2/D3hot/D3cold
  // PMCSR bit 3: the device keeps its state across D3hot->D0, so a PM
  // reset (D3hot round trip) does NOT reset it.
  bool no_soft_reset = false;
  uint8_t power_state = 0;  // PMCSR bits 1:0, D0..D3hot
};

// MSI (PCI 3.0 §6.8.1): Message Control at cap + 2.
struct MsiCap {
  bool enabled = false;             // bit 0
  unsigned max_vectors = 1;         // 2^(bits 3:1), Multiple Message Capable
  bool is_64bit = false;            // bit 7
  bool per_vector_masking = false;  // bit 8
};

// MSI-X (PCI 3.0 §6.8.2): Message Control, Table and PBA offset/BIR.
struct MsiXCap {
  bool enabled = false;          // bit 15
  bool function_masked = false;  // bit 14
  unsigned table_size = 0;       // bits 10:0, encoded as N-1
  uint8_t table_bar = 0;         // BIR bits 2:0 of cap + 4
  uint32_t table_offset = 0;     // remaining bits of cap + 4
  uint8_t pba_bar = 0;           // BIR of cap + 8
  uint32_t pba_offset = 0;
};

// PCI Express Capabilities register bits 7:4 (PCI_EXP_TYPE_*).
enum class PcieDeviceType : uint8_t {
  kEndpoint = 0x0,
  kLegacyEndpoint = 0x1,
  kRootPort = 0x4,
  kUpstreamPort = 0x5,
  kDownstreamPort = 0x6,
  kPcieToPciBridge = 0x7,
  kPciToPcieBridge = 0x8,
  kRcIntegratedEndpoint = 0x9,
  kRcEventCollector = 0xa,
};
std::string PcieDeviceTypeName(PcieDeviceType type);
// Link speed encoding (PCI_EXP_LNKCAP_SLS_*): 1 = 2.5 GT/s ... 6 = 64 GT/s.
std::string LinkSpeedName(uint8_t encoding);

struct PciExpressCap {
  uint8_t version = 0;  // bits 3:0
  PcieDeviceType type = PcieDeviceType::kEndpoint;
  // Device Capabilities (cap + 4) bit 28: Function Level Reset supported
  // (PCI_EXP_DEVCAP_FLR). The cleanest reset VFIO can use.
  bool flr = false;
  bool has_link = false;  // RC integrated endpoints/event collectors have none
  uint8_t max_link_speed = 0;  // Link Capabilities bits 3:0
  uint8_t max_link_width = 0;  // Link Capabilities bits 9:4
  uint8_t link_speed = 0;      // Link Status bits 3:0
  uint8_t link_width = 0;      // Link Status bits 9:4
};

// ACS capability register (cap + 4) bits (PCI_ACS_*). ACS on the ports
// above a device is what lets the kernel split IOMMU groups.
struct AcsCap {
  bool source_validation = false;     // SV, bit 0
  bool translation_blocking = false;  // TB, bit 1
  bool request_redirect = false;      // RR, bit 2
  bool completion_redirect = false;   // CR, bit 3
  bool upstream_forwarding = false;   // UF, bit 4
  bool egress_control = false;        // EC, bit 5
  bool direct_translated = false;     // DT, bit 6
  uint16_t control = 0;               // ACS Control register (cap + 6)
};

// SR-IOV (PCIe Base Spec §9.3.3).
struct SrIovCap {
  uint16_t initial_vfs = 0;   // cap + 0x0c
  uint16_t total_vfs = 0;     // cap + 0x0e
  uint16_t num_vfs = 0;       // cap + 0x10
  uint16_t vf_offset = 0;     // cap + 0x14, First VF Offset
  uint16_t vf_stride = 0;     // cap + 0x16
  uint16_t vf_device_id = 0;  // cap + 0x1a
};

// Resizable BAR (PCIe Base Spec §7.8.6): per resizable BAR, the sizes it
// supports and its current size.
struct ResizableBarCap {
  struct Bar {
    uint8_t index = 0;
    std::vector<uint64_t> supported_sizes;  // bytes, ascending
    uint64_t current_size = 0;              // bytes
  };
  std::vector<Bar> bars;
};

using CapabilityDetail =
    std::variant<std::monostate, PowerManagementCap, MsiCap, MsiXCap,
                 PciExpressCap, AcsCap, SrIovCap, ResizableBarCap>;

struct Capability {
  bool extended = false;
  uint16_t id = 0;      // CapabilityId or ExtCapabilityId value
  uint16_t offset = 0;  // in config space
  uint8_t version = 0;  // extended capabilities only (header bits 19:16)
  std::string name;
  CapabilityDetail detail;  // monostate: named only, or too short to parse
};

struct ConfigSpace {
  size_t size = 0;  // bytes available
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint16_t status = 0;                   // Status register, 0x06
  uint8_t header_type = 0;               // 0x0e
  bool has_capability_list = false;      // Status bit 4 (PCI_STATUS_CAP_LIST)
  std::vector<Capability> capabilities;  // standard first, then extended
  // What could not be parsed ("capability list loops at 0x50", ...).
  std::vector<std::string> problems;

  const Capability* Find(CapabilityId id) const;
  const Capability* Find(ExtCapabilityId id) const;
  // The parsed detail of the first capability holding a T, or nullptr.
  template <typename T>
  const T* Get() const {
    for (const auto& c : capabilities) {
      if (const T* t = std::get_if<T>(&c.detail)) return t;
    }
    return nullptr;
  }
  bool flr_supported() const {
    const auto* e = Get<PciExpressCap>();
    return e != nullptr && e->flr;
  }
};

ConfigSpace ParseConfigSpace(std::span<const uint8_t> bytes);

// Reads <dev>/config (up to 4096 bytes) and parses it. Unprivileged readers
// get 64 bytes, which parses to a header without capabilities; `problems`
// then says that root is needed.
Result<ConfigSpace> ReadConfigSpace(const Root& root,
                                    const PciAddress& address);

}  // namespace devpass::host
