// Names for capability ids, device/port types and link speeds, as the PCI
// Local Bus 3.0 §6.7 / PCIe Base Spec tables and pci_regs.h list them. Kept
// apart from the parser so each file stays readable.

#include <fmt/format.h>

#include "host/config_space.h"

namespace devpass::host {

std::string CapabilityName(CapabilityId id) {
  switch (id) {
    case CapabilityId::kPowerManagement:
      return "Power Management";
    case CapabilityId::kAgp:
      return "AGP";
    case CapabilityId::kVpd:
      return "Vital Product Data";
    case CapabilityId::kSlotId:
      return "Slot Identification";
    case CapabilityId::kMsi:
      return "MSI";
    case CapabilityId::kCompactPciHotSwap:
      return "CompactPCI Hot Swap";
    case CapabilityId::kPciX:
      return "PCI-X";
    case CapabilityId::kHyperTransport:
      return "HyperTransport";
    case CapabilityId::kVendorSpecific:
      return "Vendor Specific";
    case CapabilityId::kDebugPort:
      return "Debug Port";
    case CapabilityId::kCompactPciCentralResource:
      return "CompactPCI Central Resource Control";
    case CapabilityId::kHotPlug:
      return "PCI Hot-Plug";
    case CapabilityId::kBridgeSubsystemVendor:
      return "Bridge Subsystem Vendor ID";
    case CapabilityId::kAgp8x:
      return "AGP 8x";
    case CapabilityId::kSecureDevice:
      return "Secure Device";
    case CapabilityId::kPciExpress:
      return "PCI Express";
    case CapabilityId::kMsiX:
      return "MSI-X";
    case CapabilityId::kSata:
      return "SATA Data/Index";
    case CapabilityId::kAdvancedFeatures:
      return "Advanced Features";
    case CapabilityId::kEnhancedAllocation:
      return "Enhanced Allocation";
    case CapabilityId::kFlatteningPortalBridge:
      return "Flattening Portal Bridge";
  }
  return fmt::format("Unknown (0x{:02x})", static_cast<unsigned>(id));
}

std::string ExtCapabilityName(ExtCapabilityId id) {
  using E = ExtCapabilityId;
  switch (id) {
    case E::kAer:
      return "Advanced Error Reporting";
    case E::kVirtualChannel:
      return "Virtual Channel";
    case E::kDeviceSerialNumber:
      return "Device Serial Number";
    case E::kPowerBudgeting:
      return "Power Budgeting";
    case E::kRootComplexLinkDeclaration:
      return "Root Complex Link Declaration";
    case E::kRootComplexInternalLink:
      return "Root Complex Internal Link Control";
    case E::kRootComplexEventCollector:
      return "Root Complex Event Collector Endpoint Association";
    case E::kMultiFunctionVc:
      return "Multi-Function Virtual Channel";
    case E::kVirtualChannel9:
      return "Virtual Channel (MFVC present)";
    case E::kRcrb:
      return "RCRB Header";
    case E::kVendorSpecific:
      return "Vendor Specific Extended";
    case E::kConfigAccessCorrelation:
      return "Configuration Access Correlation";
    case E::kAcs:
      return "Access Control Services";
    case E::kAri:
      return "Alternative Routing-ID Interpretation";
    case E::kAts:
      return "Address Translation Services";
    case E::kSrIov:
      return "SR-IOV";
    case E::kMrIov:
      return "MR-IOV";
    case E::kMulticast:
      return "Multicast";
    case E::kPageRequest:
      return "Page Request Interface";
    case E::kResizableBar:
      return "Resizable BAR";
    case E::kDynamicPowerAllocation:
      return "Dynamic Power Allocation";
    case E::kTph:
      return "TPH Requester";
    case E::kLtr:
      return "Latency Tolerance Reporting";
    case E::kSecondaryPcie:
      return "Secondary PCI Express";
    case E::kPmux:
      return "Protocol Multiplexing";
    case E::kPasid:
      return "Process Address Space ID";
    case E::kLnReq:
      return "LN Requester";
    case E::kDpc:
      return "Downstream Port Containment";
    case E::kL1PmSubstates:
      return "L1 PM Substates";
    case E::kPtm:
      return "Precision Time Measurement";
    case E::kMPcie:
      return "M-PCIe";
    case E::kFrsQueueing:
      return "FRS Queueing";
    case E::kReadinessTimeReporting:
      return "Readiness Time Reporting";
    case E::kDvsec:
      return "Designated Vendor-Specific";
    case E::kVfResizableBar:
      return "VF Resizable BAR";
    case E::kDataLinkFeature:
      return "Data Link Feature";
    case E::kPhysicalLayer16:
      return "Physical Layer 16.0 GT/s";
    case E::kLaneMargining:
      return "Lane Margining at the Receiver";
    case E::kHierarchyId:
      return "Hierarchy ID";
    case E::kNpem:
      return "Native PCIe Enclosure Management";
    case E::kPhysicalLayer32:
      return "Physical Layer 32.0 GT/s";
    case E::kAlternateProtocol:
      return "Alternate Protocol";
    case E::kSfi:
      return "System Firmware Intermediary";
    case E::kDoe:
      return "Data Object Exchange";
    case E::kIde:
      return "Integrity and Data Encryption";
  }
  return fmt::format("Unknown (0x{:04x})", static_cast<unsigned>(id));
}

std::string PcieDeviceTypeName(PcieDeviceType type) {
  switch (type) {
    case PcieDeviceType::kEndpoint:
      return "Endpoint";
    case PcieDeviceType::kLegacyEndpoint:
      return "Legacy Endpoint";
    case PcieDeviceType::kRootPort:
      return "Root Port";
    case PcieDeviceType::kUpstreamPort:
      return "Upstream Switch Port";
    case PcieDeviceType::kDownstreamPort:
      return "Downstream Switch Port";
    case PcieDeviceType::kPcieToPciBridge:
      return "PCIe to PCI/PCI-X Bridge";
    case PcieDeviceType::kPciToPcieBridge:
      return "PCI/PCI-X to PCIe Bridge";
    case PcieDeviceType::kRcIntegratedEndpoint:
      return "Root Complex Integrated Endpoint";
    case PcieDeviceType::kRcEventCollector:
      return "Root Complex Event Collector";
  }
  return fmt::format("Unknown ({})", static_cast<unsigned>(type));
}

std::string LinkSpeedName(uint8_t encoding) {
  switch (encoding) {
    case 1:
      return "2.5 GT/s";
    case 2:
      return "5 GT/s";
    case 3:
      return "8 GT/s";
    case 4:
      return "16 GT/s";
    case 5:
      return "32 GT/s";
    case 6:
      return "64 GT/s";
    default:
      return fmt::format("unknown ({})", encoding);
  }
}

}  // namespace devpass::host
