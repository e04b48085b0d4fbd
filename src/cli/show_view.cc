#include "cli/show_view.h"

#include <fmt/format.h>

#include "base/fs.h"
#include "host/iommu_group.h"

namespace devpass::cli {
namespace {

using host::Capability;

std::string YesNo(bool b) { return b ? "yes" : "no"; }
std::string PlusMinus(std::string_view name, bool b) {
  return fmt::format("{}{}", name, b ? '+' : '-');
}

std::string SizeList(const std::vector<uint64_t>& sizes) {
  std::string out;
  for (uint64_t s : sizes) {
    if (!out.empty()) out += ", ";
    out += host::HumanSize(s);
  }
  return out;
}

struct SummaryVisitor {
  std::string operator()(std::monostate) const { return ""; }
  std::string operator()(const host::PowerManagementCap& pm) const {
    return fmt::format(
        "version {}, D1 {}, D2 {}, No_Soft_Reset {} (a D3hot round trip {} "
        "reset the device), now D{}",
        pm.version, YesNo(pm.d1_supported), YesNo(pm.d2_supported),
        YesNo(pm.no_soft_reset), pm.no_soft_reset ? "does not" : "does",
        pm.power_state);
  }
  std::string operator()(const host::MsiCap& m) const {
    return fmt::format("{} vector{}, {}-bit, per-vector masking {}, {}",
                       m.max_vectors, m.max_vectors == 1 ? "" : "s",
                       m.is_64bit ? 64 : 32, YesNo(m.per_vector_masking),
                       m.enabled ? "enabled" : "disabled");
  }
  std::string operator()(const host::MsiXCap& x) const {
    return fmt::format(
        "{} vectors; table in BAR {} at offset 0x{:x}, PBA in BAR {} at "
        "offset 0x{:x}; {}",
        x.table_size, x.table_bar, x.table_offset, x.pba_bar, x.pba_offset,
        x.enabled ? "enabled" : "disabled");
  }
  std::string operator()(const host::PciExpressCap& e) const {
    std::string s = fmt::format("{}, FLR {}", host::PcieDeviceTypeName(e.type),
                                YesNo(e.flr));
    if (e.has_link) {
      s += fmt::format(", link {} x{} (max {} x{})",
                       host::LinkSpeedName(e.link_speed), e.link_width,
                       host::LinkSpeedName(e.max_link_speed), e.max_link_width);
    }
    return s;
  }
  std::string operator()(const host::AcsCap& a) const {
    return fmt::format("{} {} {} {} {} {} {}",
                       PlusMinus("SV", a.source_validation),
                       PlusMinus("TB", a.translation_blocking),
                       PlusMinus("RR", a.request_redirect),
                       PlusMinus("CR", a.completion_redirect),
                       PlusMinus("UF", a.upstream_forwarding),
                       PlusMinus("EC", a.egress_control),
                       PlusMinus("DT", a.direct_translated));
  }
  std::string operator()(const host::SrIovCap& s) const {
    return fmt::format(
        "TotalVFs {}, InitialVFs {}, NumVFs {}, VF offset {}, stride {}, "
        "VF device id {:04x}",
        s.total_vfs, s.initial_vfs, s.num_vfs, s.vf_offset, s.vf_stride,
        s.vf_device_id);
  }
  std::string operator()(const host::ResizableBarCap& r) const {
    std::string out;
    for (const auto& b : r.bars) {
      if (!out.empty()) out += "; ";
      out += fmt::format("BAR {}: {} (current {})", b.index,
                         SizeList(b.supported_sizes),
                         host::HumanSize(b.current_size));
    }
    return out;
  }
};

struct JsonVisitor {
  nlohmann::json operator()(std::monostate) const { return nullptr; }
  nlohmann::json operator()(const host::PowerManagementCap& pm) const {
    return {{"version", pm.version},
            {"d1", pm.d1_supported},
            {"d2", pm.d2_supported},
            {"pme_support", pm.pme_support},
            {"no_soft_reset", pm.no_soft_reset},
            {"power_state", pm.power_state}};
  }
  nlohmann::json operator()(const host::MsiCap& m) const {
    return {{"enabled", m.enabled},
            {"max_vectors", m.max_vectors},
            {"is_64bit", m.is_64bit},
            {"per_vector_masking", m.per_vector_masking}};
  }
  nlohmann::json operator()(const host::MsiXCap& x) const {
    return {{"enabled", x.enabled},
            {"function_masked", x.function_masked},
            {"table_size", x.table_size},
            {"table_bar", x.table_bar},
            {"table_offset", x.table_offset},
            {"pba_bar", x.pba_bar},
            {"pba_offset", x.pba_offset}};
  }
  nlohmann::json operator()(const host::PciExpressCap& e) const {
    nlohmann::json j = {{"version", e.version},
                        {"device_type", host::PcieDeviceTypeName(e.type)},
                        {"flr", e.flr}};
    if (e.has_link) {
      j["link"] = {{"speed", host::LinkSpeedName(e.link_speed)},
                   {"width", e.link_width},
                   {"max_speed", host::LinkSpeedName(e.max_link_speed)},
                   {"max_width", e.max_link_width}};
    }
    return j;
  }
  nlohmann::json operator()(const host::AcsCap& a) const {
    return {{"sv", a.source_validation},   {"tb", a.translation_blocking},
            {"rr", a.request_redirect},    {"cr", a.completion_redirect},
            {"uf", a.upstream_forwarding}, {"ec", a.egress_control},
            {"dt", a.direct_translated},   {"control", a.control}};
  }
  nlohmann::json operator()(const host::SrIovCap& s) const {
    return {{"total_vfs", s.total_vfs},
            {"initial_vfs", s.initial_vfs},
            {"num_vfs", s.num_vfs},
            {"vf_offset", s.vf_offset},
            {"vf_stride", s.vf_stride},
            {"vf_device_id", fmt::format("{:04x}", s.vf_device_id)}};
  }
  nlohmann::json operator()(const host::ResizableBarCap& r) const {
    nlohmann::json bars = nlohmann::json::array();
    for (const auto& b : r.bars) {
      bars.push_back({{"bar", b.index},
                      {"supported_sizes", b.supported_sizes},
                      {"current_size", b.current_size}});
    }
    return {{"bars", bars}};
  }
};

}  // namespace

std::string CapabilitySummary(const Capability& cap) {
  return std::visit(SummaryVisitor{}, cap.detail);
}

nlohmann::json CapabilityJson(const Capability& cap) {
  nlohmann::json j = {{"id", cap.extended ? fmt::format("0x{:04x}", cap.id)
                                          : fmt::format("0x{:02x}", cap.id)},
                      {"name", cap.name},
                      {"offset", fmt::format("0x{:02x}", cap.offset)},
                      {"extended", cap.extended}};
  if (cap.extended) j["version"] = cap.version;
  j["fields"] = std::visit(JsonVisitor{}, cap.detail);
  return j;
}

Result<DeviceDetails> BuildDetails(const Root& root,
                                   const PciAddress& address) {
  // Existence first, so a typo gets the hint instead of a listing error.
  DP_ASSIGN_OR_RETURN(host::PciDeviceInfo one,
                      host::ScanPciDevice(root, address));
  (void)one;
  DP_ASSIGN_OR_RETURN(Listing listing, BuildListing(root, {}));
  DeviceDetails out;
  out.warnings = listing.warnings;
  const ListedDevice* self = nullptr;
  for (const auto& d : listing.devices) {
    if (d.info.address == address) self = &d;
  }
  if (self == nullptr) {
    return MakeError(
        ErrorCode::kNotFound,
        fmt::format("PCI device {} disappeared while reading it", address));
  }
  out.device = *self;
  for (const auto& m : self->info.group_members) {
    for (const auto& d : listing.devices) {
      if (d.info.address != m) continue;
      out.group.push_back({m, d.info.driver,
                           d.info.is_bridge() || d.info.driver == "pcieport",
                           host::InHostUse(d.info)});
    }
  }
  if (auto cfg = host::ReadConfigSpace(root, address)) {
    out.config = std::move(*cfg);
  } else {
    out.config_error = cfg.error().ToString();
  }
  if (auto bars = host::ReadBars(root, address)) out.bars = std::move(*bars);
  auto reset = ReadTrimmed(root.Sys(
      fmt::format("bus/pci/devices/{}/reset_method", address.ToString())));
  if (reset) out.reset_methods = SplitWords(*reset);
  return out;
}

nlohmann::json ShowJson(const DeviceDetails& details) {
  nlohmann::json j = DeviceJson(details.device);
  j["group"] = nlohmann::json::array();
  for (const auto& m : details.group) {
    j["group"].push_back(
        {{"address", m.address.ToString()},
         {"driver", m.driver.empty() ? nlohmann::json(nullptr)
                                     : nlohmann::json(m.driver)},
         {"bridge", m.bridge},
         {"in_host_use", m.in_host_use}});
  }
  j["capabilities"] = nlohmann::json::array();
  for (const auto& c : details.config.capabilities)
    j["capabilities"].push_back(CapabilityJson(c));
  j["flr"] = details.config.flr_supported();
  j["config_problems"] = details.config.problems;
  if (!details.config_error.empty()) j["config_error"] = details.config_error;
  j["bars"] = nlohmann::json::array();
  for (const auto& b : details.bars) {
    j["bars"].push_back(
        {{"index", b.index},
         {"kind", b.is_rom ? "rom" : std::string(host::BarKindName(b.kind))},
         {"start", fmt::format("0x{:x}", b.start)},
         {"size", b.size},
         {"size_human", host::HumanSize(b.size)},
         {"prefetchable", b.prefetchable}});
  }
  j["reset_method"] = details.reset_methods;
  return j;
}

std::string ShowText(const DeviceDetails& details) {
  const auto& ld = details.device;
  const auto& d = ld.info;
  std::string out;
  auto line = [&out](std::string_view key, const std::string& value) {
    // Values end in a name that may be unknown: no trailing blanks then.
    out += fmt::format("  {:<17}{}\n", std::string(key) + ":", Trim(value));
  };
  out += fmt::format("{}  {}\n", d.address.ToString(), DisplayName(ld));
  line("vendor", fmt::format("{:04x} {}", d.vendor_id, ld.names.vendor));
  line("device", fmt::format("{:04x} {}", d.device_id, ld.names.device));
  if (d.subsystem_vendor_id != 0 || d.subsystem_device_id != 0) {
    line("subsystem", fmt::format("{:04x}:{:04x} {}", d.subsystem_vendor_id,
                                  d.subsystem_device_id, ld.names.subsystem));
  }
  line("class", fmt::format("{:06x} {}", d.class_code, ld.names.class_name));
  line("revision", fmt::format("{:02x}", d.revision));
  line("header type", fmt::format("{}{}", d.header_type & 0x7f,
                                  d.multifunction() ? " (multifunction)" : ""));
  line("driver", d.driver.empty() ? "none" : d.driver);
  if (!d.driver_override.empty()) line("driver_override", d.driver_override);
  line("numa node", d.numa_node >= 0 ? std::to_string(d.numa_node) : "-");
  if (d.boot_vga) line("boot VGA", "yes (the firmware console GPU)");
  if (d.physfn)
    line("SR-IOV", fmt::format("virtual function of {}", d.physfn->ToString()));
  if (d.sriov_totalvfs >= 0) {
    line("SR-IOV", fmt::format("physical function: {} of {} VFs enabled",
                               std::max(d.sriov_numvfs, 0), d.sriov_totalvfs));
  }
  line("reset methods",
       details.reset_methods.empty()
           ? "none reported (no reset_method file)"
           : fmt::format("{}", fmt::join(details.reset_methods, ", ")));
  line("FLR", YesNo(details.config.flr_supported()));

  if (d.iommu_group) {
    line("IOMMU group", std::to_string(*d.iommu_group));
    for (const auto& m : details.group) {
      out += fmt::format("    {}  {}{}\n", m.address.ToString(),
                         m.driver.empty() ? "(no driver)" : m.driver,
                         m.bridge        ? "  bridge"
                         : m.in_host_use ? "  in host use"
                                         : "");
    }
  } else {
    line("IOMMU group", "none (IOMMU off)");
  }
  line("assignable", ld.assessment.assignable ? "yes" : "no");
  for (const auto& r : ld.assessment.reasons)
    out += fmt::format("    - {}\n", r);
  if (!ld.assessment.host_dependencies.empty()) {
    out += "  host depends on it:\n";
    for (const auto& dep : ld.assessment.host_dependencies) {
      out += fmt::format("    - {}\n", dep.detail);
    }
  }

  out += "  BARs:\n";
  if (details.bars.empty()) out += "    none\n";
  for (const auto& b : details.bars) {
    out += fmt::format(
        "    {:<5} {:<6} 0x{:<16x} {:>9}{}\n",
        b.is_rom ? "ROM" : fmt::format("BAR{}", b.index),
        b.is_rom ? "rom" : std::string(host::BarKindName(b.kind)), b.start,
        host::HumanSize(b.size), b.prefetchable ? "  prefetchable" : "");
  }
  out += "  capabilities:\n";
  if (!details.config_error.empty()) {
    out += fmt::format("    unreadable: {}\n", details.config_error);
  } else if (details.config.capabilities.empty()) {
    out += "    none\n";
  }
  for (const auto& c : details.config.capabilities) {
    std::string summary = CapabilitySummary(c);
    out += fmt::format("    [{:03x}] {}{}\n", c.offset, c.name,
                       summary.empty() ? "" : ": " + summary);
  }
  for (const auto& p : details.config.problems)
    out += fmt::format("    note: {}\n", p);
  return out;
}

}  // namespace devpass::cli
