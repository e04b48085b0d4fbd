#include "cli/list_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <map>
#include <thread>
#include <tuple>

#include "hiding/ledger.h"

namespace devpass::cli {
namespace {

struct NamedClass {
  std::string_view name;
  std::string_view prefix;  // hex prefix of the class code
};

// Names for --class. Base classes and a few subclasses users ask for, from
// the PCI Code and ID Assignment Specification. "serial" is the serial
// communication controller class (0x07: UARTs, modems); USB, SMBus and
// other serial *buses* are "serial-bus" (0x0c), USB alone is "usb".
constexpr std::array<NamedClass, 17> kNamedClasses = {{
    {"storage", "01"},
    {"nvme", "0108"},
    {"network", "02"},
    {"display", "03"},
    {"gpu", "03"},
    {"multimedia", "04"},
    {"audio", "0403"},
    {"memory", "05"},
    {"bridge", "06"},
    {"serial", "07"},
    {"system", "08"},
    {"input", "09"},
    {"serial-bus", "0c"},
    {"usb", "0c03"},
    {"wireless", "0d"},
    {"encryption", "10"},
    {"accelerator", "12"},
}};

// Widest a device name may be in the table before it is cut with "...".
constexpr size_t kNameColumnMax = 40;
constexpr size_t kReasonColumnMax = 60;

std::string Hex4(uint16_t v) { return fmt::format("{:04x}", v); }

std::string Truncate(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return s.substr(0, max - 3) + "...";
}

nlohmann::json NullIfEmpty(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

}  // namespace

bool ClassFilter::Matches(uint32_t class_code) const {
  int shift = (6 - digits) * 4;
  return ((class_code & 0xffffff) >> shift) == value;
}

Result<ClassFilter> ParseClassFilter(std::string_view text) {
  std::string lower;
  for (char c : text)
    lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& named : kNamedClasses) {
    if (lower == named.name) return ParseClassFilter(named.prefix);
  }
  std::string_view hex = lower;
  if (hex.size() > 2 && hex[0] == '0' && hex[1] == 'x') hex.remove_prefix(2);
  ClassFilter f;
  auto [ptr, ec] =
      std::from_chars(hex.data(), hex.data() + hex.size(), f.value, 16);
  bool ok = ec == std::errc() && ptr == hex.data() + hex.size() &&
            (hex.size() == 2 || hex.size() == 4 || hex.size() == 6);
  if (!ok) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("'{}' is not a device class; give a hex class prefix "
                    "(02, 0200, 0x020000) or one of: {}",
                    text, ClassFilterHelp()));
  }
  f.digits = static_cast<int>(hex.size());
  return f;
}

std::string ClassFilterHelp() {
  std::string out;
  for (const auto& named : kNamedClasses) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}={}", named.name, named.prefix);
  }
  return out;
}

std::set<PciAddress> AssignedDevices(const Root& root,
                                     std::vector<std::string>* warnings) {
  std::set<PciAddress> out;
  auto ledger = hiding::Ledger::Load(root);
  if (!ledger) {
    warnings->push_back(
        "cannot read the ledger, so assignments are not shown: " +
        ledger.error().ToString());
    return out;
  }
  for (const auto& e : ledger->entries()) {
    if (e.assignment) out.insert(e.address);
  }
  return out;
}

Result<Listing> BuildListing(const Root& root, const ListOptions& options) {
  host::PciNames names(root);
  // Parsing pci.ids, scanning host usage (mounts, routes, boot_vga) and
  // reading the ledger are independent of the device scan: do them on a
  // helper thread meanwhile. Nothing here touches them until join().
  Result<host::HostUsage> usage_result = host::HostUsage{};
  std::set<PciAddress> assigned;
  std::vector<std::string> helper_warnings;
  std::thread helper([&] {
    names.Preload();
    usage_result = host::HostUsage::ScanWithoutBootVga(root);  // see below
    assigned = AssignedDevices(root, &helper_warnings);
  });
  auto scanned = host::ScanPciDevices(root);
  helper.join();
  if (!scanned) return tl::unexpected(scanned.error());

  Listing listing;
  host::HostUsage usage;
  if (usage_result) {
    usage = std::move(*usage_result);
  } else {
    listing.warnings.push_back(
        "cannot tell which devices the host depends on: " +
        usage_result.error().ToString());
  }
  for (auto& w : helper_warnings) listing.warnings.push_back(std::move(w));

  auto& devices = *scanned;
  // The scan read every boot_vga already; HostUsage skipped it.
  for (const auto& d : devices) {
    if (d.boot_vga) usage.AddBootVga(d.address);
  }
  auto assessments = host::AssessDevices(devices, usage, assigned);
  listing.total_scanned = devices.size();
  listing.devices.reserve(devices.size());
  std::map<std::tuple<uint16_t, uint16_t, uint16_t, uint16_t, uint32_t>,
           DeviceNames>
      name_cache;
  for (size_t i = 0; i < devices.size(); ++i) {
    const auto& d = devices[i];
    if (d.iommu_group) listing.any_iommu_group = true;
    if (options.class_filter && !options.class_filter->Matches(d.class_code))
      continue;
    if (options.group && d.iommu_group != options.group) continue;
    if (options.assignable_only && !assessments[i].assignable) continue;
    ListedDevice ld;
    ld.info = std::move(devices[i]);
    ld.assessment = std::move(assessments[i]);
    // Hosts repeat the same few functions many times (ports, VFs, NIC
    // functions): look each id combination up once.
    const auto& f = ld.info;
    std::tuple key{f.vendor_id, f.device_id, f.subsystem_vendor_id,
                   f.subsystem_device_id, f.class_code >> 8};
    auto [it, inserted] = name_cache.try_emplace(key);
    if (inserted) {
      DeviceNames& n = it->second;
      n.vendor = names.Vendor(f.vendor_id);
      n.device = names.Device(f.vendor_id, f.device_id);
      if (f.subsystem_vendor_id != 0 || f.subsystem_device_id != 0) {
        n.subsystem =
            names.Subsystem(f.vendor_id, f.device_id, f.subsystem_vendor_id,
                            f.subsystem_device_id);
      }
      n.class_name = names.Class(f.class_code);
    }
    ld.names = it->second;
    listing.devices.push_back(std::move(ld));
  }
  return listing;
}

std::string DisplayName(const ListedDevice& d) {
  const auto& n = d.names;
  if (!n.device.empty()) return n.device;
  if (!n.vendor.empty())
    return fmt::format("{} device {}", n.vendor, Hex4(d.info.device_id));
  return fmt::format("device {}:{}", Hex4(d.info.vendor_id),
                     Hex4(d.info.device_id));
}

nlohmann::json DeviceJson(const ListedDevice& ld) {
  const auto& d = ld.info;
  nlohmann::json j;
  j["address"] = d.address.ToString();
  j["vendor_id"] = Hex4(d.vendor_id);
  j["device_id"] = Hex4(d.device_id);
  j["subsystem_vendor_id"] = Hex4(d.subsystem_vendor_id);
  j["subsystem_device_id"] = Hex4(d.subsystem_device_id);
  j["class"] = fmt::format("{:06x}", d.class_code);
  j["revision"] = fmt::format("{:02x}", d.revision);
  j["vendor_name"] = NullIfEmpty(ld.names.vendor);
  j["device_name"] = NullIfEmpty(ld.names.device);
  j["subsystem_name"] = NullIfEmpty(ld.names.subsystem);
  j["class_name"] = NullIfEmpty(ld.names.class_name);
  j["class_short"] = NullIfEmpty(host::ShortClassName(d.class_code));
  j["header_type"] = d.header_type & 0x7f;
  j["multifunction"] = d.multifunction();
  j["bridge"] = d.is_bridge();
  j["driver"] = NullIfEmpty(d.driver);
  j["driver_override"] = NullIfEmpty(d.driver_override);
  j["iommu_group"] =
      d.iommu_group ? nlohmann::json(*d.iommu_group) : nlohmann::json(nullptr);
  j["group_members"] = nlohmann::json::array();
  for (const auto& m : d.group_members)
    j["group_members"].push_back(m.ToString());
  j["physfn"] =
      d.physfn ? nlohmann::json(d.physfn->ToString()) : nlohmann::json(nullptr);
  j["virtfns"] = nlohmann::json::array();
  for (const auto& v : d.virtfns) j["virtfns"].push_back(v.ToString());
  j["sriov_totalvfs"] = d.sriov_totalvfs >= 0 ? nlohmann::json(d.sriov_totalvfs)
                                              : nlohmann::json(nullptr);
  j["sriov_numvfs"] = d.sriov_numvfs >= 0 ? nlohmann::json(d.sriov_numvfs)
                                          : nlohmann::json(nullptr);
  j["numa_node"] =
      d.numa_node >= 0 ? nlohmann::json(d.numa_node) : nlohmann::json(nullptr);
  j["boot_vga"] = d.boot_vga;
  j["assignable"] = ld.assessment.assignable;
  j["reasons"] = ld.assessment.reasons;
  j["host_dependencies"] = nlohmann::json::array();
  for (const auto& dep : ld.assessment.host_dependencies) {
    j["host_dependencies"].push_back(
        {{"kind", std::string(host::HostDependencyKindName(dep.kind))},
         {"detail", dep.detail}});
  }
  return j;
}

nlohmann::json ListJson(const Listing& listing) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : listing.devices) out.push_back(DeviceJson(d));
  return out;
}

Result<nlohmann::json> ListJson(const Root& root, const ListOptions& options) {
  DP_ASSIGN_OR_RETURN(Listing listing, BuildListing(root, options));
  return ListJson(listing);
}

std::string ListText(const Listing& listing) {
  struct Row {
    std::array<std::string, 7> cells;
  };
  std::vector<Row> rows;
  rows.push_back(
      {{"ADDRESS", "CLASS", "IDS", "DEVICE", "DRIVER", "GROUP", "ASSIGNABLE"}});
  size_t assignable = 0;
  for (const auto& ld : listing.devices) {
    const auto& d = ld.info;
    std::string cls = host::ShortClassName(d.class_code);
    if (cls.empty()) cls = fmt::format("{:04x}", d.class_id());
    std::string verdict = "yes";
    if (ld.assessment.assignable) {
      ++assignable;
    } else {
      verdict = "no";
      if (!ld.assessment.reasons.empty()) {
        verdict +=
            ": " + Truncate(ld.assessment.reasons.front(), kReasonColumnMax);
      }
    }
    rows.push_back(
        {{d.address.ToString(), cls,
          fmt::format("{}:{}", Hex4(d.vendor_id), Hex4(d.device_id)),
          Truncate(DisplayName(ld), kNameColumnMax),
          d.driver.empty() ? "-" : d.driver,
          d.iommu_group ? std::to_string(*d.iommu_group) : "-", verdict}});
  }
  std::array<size_t, 7> width{};
  for (const auto& r : rows) {
    for (size_t c = 0; c < width.size(); ++c)
      width[c] = std::max(width[c], r.cells[c].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < width.size(); ++c) {
      // The last column is not padded: no trailing blanks.
      line += c + 1 < width.size()
                  ? fmt::format("{:<{}}  ", r.cells[c], width[c])
                  : r.cells[c];
    }
    out += line + "\n";
  }
  out += fmt::format("{} device{}, {} assignable", listing.devices.size(),
                     listing.devices.size() == 1 ? "" : "s", assignable);
  if (listing.devices.size() != listing.total_scanned) {
    out += fmt::format(" (filtered from {})", listing.total_scanned);
  }
  out += "\n";
  if (listing.total_scanned > 0 && !listing.any_iommu_group) {
    out +=
        "No device has an IOMMU group: the IOMMU is off, so nothing can be "
        "assigned. "
        "Run 'devpass check' for the fix.\n";
  }
  return out;
}

}  // namespace devpass::cli
