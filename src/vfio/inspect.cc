#include "vfio/inspect.h"

#include <fmt/format.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>

#include "vfio/group.h"
#include "vfio/pci_config.h"

namespace devpass::vfio {
namespace {

using nlohmann::json;

std::string Hex(uint64_t v) { return fmt::format("0x{:x}", v); }

std::string SizeName(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B",   "KiB", "MiB", "GiB",
                                           "TiB", "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024 && bytes % 1024 == 0 && unit < 6) {
    bytes /= 1024;
    ++unit;
  }
  return fmt::format("{}{}", bytes, kUnits[unit]);
}

json RegionFlags(uint32_t flags) {
  json out = json::array();
  if (flags & VFIO_REGION_INFO_FLAG_READ) out.push_back("read");
  if (flags & VFIO_REGION_INFO_FLAG_WRITE) out.push_back("write");
  if (flags & VFIO_REGION_INFO_FLAG_MMAP) out.push_back("mmap");
  if (flags & VFIO_REGION_INFO_FLAG_CAPS) out.push_back("caps");
  return out;
}

json IrqFlags(uint32_t flags) {
  json out = json::array();
  if (flags & VFIO_IRQ_INFO_EVENTFD) out.push_back("eventfd");
  if (flags & VFIO_IRQ_INFO_MASKABLE) out.push_back("maskable");
  if (flags & VFIO_IRQ_INFO_AUTOMASKED) out.push_back("automasked");
  if (flags & VFIO_IRQ_INFO_NORESIZE) out.push_back("noresize");
  return out;
}

std::string CapabilityName(uint8_t id) {
  switch (id) {
    case PCI_CAP_ID_PM:
      return "power-management";
    case PCI_CAP_ID_MSI:
      return "MSI";
    case PCI_CAP_ID_VNDR:
      return "vendor";
    case PCI_CAP_ID_EXP:
      return "PCI-Express";
    case PCI_CAP_ID_MSIX:
      return "MSI-X";
    case PCI_CAP_ID_SSVID:
      return "subsystem-id";
    case PCI_CAP_ID_AF:
      return "advanced-features";
    default:
      return Hex(id);
  }
}

json Region(const RegionInfo& r) {
  json j = {{"index", r.index},
            {"name", RegionName(r.index)},
            {"size", r.size},
            {"offset", Hex(r.offset)},
            {"flags", RegionFlags(r.flags)}};
  if (r.sparse_areas) {
    json areas = json::array();
    for (const auto& a : *r.sparse_areas) {
      areas.push_back({{"offset", Hex(a.offset)}, {"size", a.size}});
    }
    j["mmap_areas"] = areas;
  }
  j["msix_mappable"] = r.msix_mappable;
  if (r.type)
    j["type"] = {{"type", Hex(r.type->type)},
                 {"subtype", Hex(r.type->subtype)}};
  return j;
}

json HotReset(const Device& device) {
  auto info = device.GetHotResetInfo();
  if (!info) return {{"supported", false}, {"reason", info.error().message}};
  json devices = json::array();
  for (const auto& d : info->devices) {
    // devfn = slot << 3 | function (PCI_SLOT/PCI_FUNC in the kernel).
    PciAddress a(d.segment, d.bus, static_cast<uint8_t>(d.devfn >> 3),
                 static_cast<uint8_t>(d.devfn & 7));
    devices.push_back({{"address", a.ToString()}, {"group", d.group_id}});
  }
  return {{"supported", true}, {"devices", devices}};
}

}  // namespace

std::vector<std::string> PageSizeNames(uint64_t bitmap) {
  std::vector<std::string> out;
  for (int bit = 0; bit < 64; ++bit) {
    if (bitmap & (uint64_t{1} << bit))
      out.push_back(SizeName(uint64_t{1} << bit));
  }
  return out;
}

json InspectDevice(const IommuBackend& backend, const Device& device) {
  json report;
  report["device"] = device.address().ToString();
  report["group"] = device.group().number();
  report["device_flags"] = {{"raw", Hex(device.info().flags)},
                            {"pci", device.is_pci()},
                            {"reset", device.supports_reset()}};

  json regions = json::array();
  for (const auto& r : device.regions()) regions.push_back(Region(r));
  report["regions"] = regions;

  json irqs = json::array();
  for (const auto& irq : device.irqs()) {
    irqs.push_back({{"index", irq.index},
                    {"name", IrqName(irq.index)},
                    {"count", irq.count},
                    {"flags", IrqFlags(irq.flags)}});
  }
  report["irqs"] = irqs;

  report["reset"] = {{"supported", device.supports_reset()},
                     {"hot_reset", HotReset(device)}};

  const IommuInfo& info = backend.iommu_info();
  json ranges = json::array();
  for (const auto& r : info.iova_ranges)
    ranges.push_back({{"start", Hex(r.start)}, {"end", Hex(r.end)}});
  report["iommu"] = {{"backend", backend.name()},
                     {"page_sizes", PageSizeNames(info.iova_pgsizes)},
                     {"page_size_bitmap", Hex(info.iova_pgsizes)},
                     {"iova_ranges", ranges}};
  if (info.dma_avail) report["iommu"]["dma_avail"] = *info.dma_avail;
  if (const auto* c = dynamic_cast<const Container*>(&backend)) {
    report["iommu"]["extensions"] = c->extensions();
  }

  json reserved = json::array();
  for (const auto& r : device.group().reserved_regions()) {
    reserved.push_back(
        {{"start", Hex(r.start)}, {"end", Hex(r.end)}, {"type", r.type}});
  }
  report["reserved_regions"] = reserved;

  auto config = device.ReadConfigSpace();
  if (!config) {
    report["config"] = {{"error", config.error().ToString()}};
    return report;
  }
  PciConfigSummary s = ParsePciConfig(*config);
  json caps = json::array();
  for (const auto& c : s.capabilities) {
    caps.push_back({{"offset", Hex(c.offset)},
                    {"id", Hex(c.id)},
                    {"name", CapabilityName(c.id)}});
  }
  report["config"] = {{"vendor", fmt::format("{:04x}", s.vendor_id)},
                      {"device", fmt::format("{:04x}", s.device_id)},
                      {"class", fmt::format("{:06x}", s.class_code)},
                      {"command", Hex(s.command)},
                      {"interrupt_pin", s.interrupt_pin},
                      {"size", config->size()},
                      {"capabilities", caps}};
  if (s.msi) {
    report["msi"] = {{"capability", Hex(s.msi->offset)},
                     {"vectors", s.msi->max_vectors},
                     {"64bit", s.msi->is_64bit},
                     {"per_vector_mask", s.msi->per_vector_mask}};
  }
  if (s.msix) {
    const auto& x = *s.msix;
    report["msix"] = {{"capability", Hex(x.offset)},
                      {"vectors", x.table_size},
                      {"table",
                       {{"bar", x.table_bar},
                        {"offset", Hex(x.table_offset)},
                        {"size", x.table_bytes()}}},
                      {"pba",
                       {{"bar", x.pba_bar},
                        {"offset", Hex(x.pba_offset)},
                        {"size", x.pba_bytes()}}}};
  }
  return report;
}

std::string InspectText(const json& r) {
  std::string out;
  auto line = [&](std::string s) { out += s + "\n"; };
  line(fmt::format("{}  (VFIO group {}, {})", r["device"].get<std::string>(),
                   r["group"].get<int>(),
                   r["iommu"]["backend"].get<std::string>()));
  if (r.contains("config") && r["config"].contains("vendor")) {
    const auto& c = r["config"];
    line(fmt::format("  id {}:{}  class {}  config space {} bytes",
                     c["vendor"].get<std::string>(),
                     c["device"].get<std::string>(),
                     c["class"].get<std::string>(), c["size"].get<size_t>()));
  }
  line("Regions:");
  for (const auto& g : r["regions"]) {
    if (g["size"].get<uint64_t>() == 0) continue;
    std::string flags;
    for (const auto& f : g["flags"])
      flags += (flags.empty() ? "" : ",") + f.get<std::string>();
    std::string extra;
    if (g.contains("mmap_areas")) {
      std::string areas;
      for (const auto& a : g["mmap_areas"]) {
        areas += fmt::format("{}{}+{}", areas.empty() ? "" : " ",
                             a["offset"].get<std::string>(),
                             SizeName(a["size"].get<uint64_t>()));
      }
      extra +=
          " mmap-areas[" + (areas.empty() ? std::string("none") : areas) + "]";
    }
    if (g["msix_mappable"].get<bool>()) extra += " msix-mappable";
    if (g.contains("type")) {
      extra += fmt::format(" type {}/{}", g["type"]["type"].get<std::string>(),
                           g["type"]["subtype"].get<std::string>());
    }
    line(fmt::format("  {:<8} {:>8}  {}{}", g["name"].get<std::string>(),
                     SizeName(g["size"].get<uint64_t>()), flags, extra));
  }
  line("Interrupts:");
  for (const auto& i : r["irqs"]) {
    std::string flags;
    for (const auto& f : i["flags"])
      flags += (flags.empty() ? "" : ",") + f.get<std::string>();
    line(fmt::format("  {:<6} count {:<4} {}", i["name"].get<std::string>(),
                     i["count"].get<uint32_t>(), flags.empty() ? "-" : flags));
  }
  if (r.contains("msix")) {
    const auto& x = r["msix"];
    line(fmt::format(
        "  MSI-X table: BAR{} at {} ({} bytes), PBA: BAR{} at {} ({} bytes)",
        x["table"]["bar"].get<int>(), x["table"]["offset"].get<std::string>(),
        x["table"]["size"].get<uint32_t>(), x["pba"]["bar"].get<int>(),
        x["pba"]["offset"].get<std::string>(),
        x["pba"]["size"].get<uint32_t>()));
  }
  if (r.contains("msi")) {
    line(fmt::format(
        "  MSI: {} vector(s), {}-bit{}", r["msi"]["vectors"].get<uint32_t>(),
        r["msi"]["64bit"].get<bool>() ? 64 : 32,
        r["msi"]["per_vector_mask"].get<bool>() ? ", per-vector mask" : ""));
  }
  const auto& reset = r["reset"];
  line(fmt::format("Reset: {}", reset["supported"].get<bool>()
                                    ? "supported (VFIO_DEVICE_RESET)"
                                    : "none"));
  if (reset["hot_reset"]["supported"].get<bool>()) {
    std::string devs;
    for (const auto& d : reset["hot_reset"]["devices"]) {
      devs +=
          fmt::format("{}{} (group {})", devs.empty() ? "" : ", ",
                      d["address"].get<std::string>(), d["group"].get<int>());
    }
    line("  hot reset also resets: " +
         (devs.empty() ? std::string("nothing else") : devs));
  } else {
    line("  hot reset: not available");
  }
  const auto& iommu = r["iommu"];
  std::string sizes;
  for (const auto& s : iommu["page_sizes"])
    sizes += (sizes.empty() ? "" : " ") + s.get<std::string>();
  line(fmt::format("IOMMU: {}, page sizes {}",
                   iommu["backend"].get<std::string>(),
                   sizes.empty() ? "unknown" : sizes));
  for (const auto& range : iommu["iova_ranges"]) {
    line(fmt::format("  IOVA range {} - {}", range["start"].get<std::string>(),
                     range["end"].get<std::string>()));
  }
  if (iommu.contains("dma_avail")) {
    line(fmt::format("  DMA mappings available: {}",
                     iommu["dma_avail"].get<uint32_t>()));
  }
  line("Reserved regions:");
  if (r["reserved_regions"].empty()) line("  none");
  for (const auto& rr : r["reserved_regions"]) {
    line(fmt::format("  {} - {} {}", rr["start"].get<std::string>(),
                     rr["end"].get<std::string>(),
                     rr["type"].get<std::string>()));
  }
  return out;
}

}  // namespace devpass::vfio
