#include "vfio/caps.h"

#include <fmt/format.h>
#include <linux/vfio.h>

#include <cstring>
#include <set>

namespace devpass::vfio {
namespace {

// Reads a trivially copyable T at `offset`; false when out of bounds (a
// truncated or corrupt answer must not read past the buffer). Not optional<T>:
// the kernel structs end in flexible arrays, which std::optional rejects.
template <typename T>
bool Load(std::span<const uint8_t> buf, size_t offset, T* out) {
  if (offset > buf.size() || buf.size() - offset < sizeof(T)) return false;
  std::memcpy(static_cast<void*>(out), buf.data() + offset, sizeof(T));
  return true;
}

template <typename T>
void Store(std::vector<uint8_t>& buf, size_t offset, const T& value) {
  if (buf.size() < offset + sizeof(T)) buf.resize(offset + sizeof(T));
  std::memcpy(buf.data() + offset, &value, sizeof(T));
}

tl::unexpected<Error> Corrupt(std::string_view what) {
  return MakeError(
      ErrorCode::kInternal,
      fmt::format("the kernel's {} answer is malformed (capability "
                  "chain out of bounds or looping); please report "
                  "this with your kernel version",
                  what));
}

// Walks the chain from `first`, calling visit(header, offset) per capability.
template <typename Visit>
Status WalkCaps(std::span<const uint8_t> buf, uint32_t first,
                std::string_view what, Visit visit) {
  std::set<uint32_t> seen;
  for (uint32_t off = first; off != 0;) {
    vfio_info_cap_header header{};
    if (!Load(buf, off, &header) || !seen.insert(off).second)
      return Corrupt(what);
    DP_RETURN_IF_ERROR(visit(header, off));
    off = header.next;
  }
  return Ok();
}

// Appends a capability to `buf`, linking it from the previous one (or from
// the struct's cap_offset field at `first_link`).
void AppendCap(std::vector<uint8_t>& buf, size_t* link_at, uint16_t id,
               uint16_t version, const std::vector<uint8_t>& body) {
  size_t off = (buf.size() + 7) & ~size_t{7};  // the kernel 8-byte aligns caps
  buf.resize(off);
  vfio_info_cap_header header{id, version, 0};
  Store(buf, off, header);
  buf.insert(buf.end(), body.begin(), body.end());
  Store<uint32_t>(buf, *link_at, static_cast<uint32_t>(off));
  *link_at = off + offsetof(vfio_info_cap_header, next);
}

template <typename T>
void AppendBytes(std::vector<uint8_t>& out, const T& value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

}  // namespace

Result<std::vector<uint8_t>> QueryGrowing(
    size_t initial_size,
    const std::function<int(std::vector<uint8_t>&)>& query) {
  std::vector<uint8_t> buf(initial_size, 0);
  for (int attempt = 0; attempt < 4; ++attempt) {
    uint32_t argsz = static_cast<uint32_t>(buf.size());
    std::memcpy(buf.data(), &argsz, sizeof(argsz));
    int err = query(buf);
    if (err != 0) return ErrnoError(err, "VFIO info query failed");
    uint32_t wanted = 0;
    std::memcpy(&wanted, buf.data(), sizeof(wanted));
    if (wanted <= buf.size()) return buf;
    // Start over with zeroes so no stale field of the short answer survives.
    buf.assign(wanted, 0);
  }
  return MakeError(ErrorCode::kInternal,
                   "the kernel kept asking for a larger VFIO info buffer");
}

Result<RegionInfo> ParseRegionInfo(std::span<const uint8_t> buf) {
  vfio_region_info raw{};
  if (!Load(buf, 0, &raw)) return Corrupt("region info");
  RegionInfo info;
  info.index = raw.index;
  info.flags = raw.flags;
  info.size = raw.size;
  info.offset = raw.offset;
  if (!(raw.flags & VFIO_REGION_INFO_FLAG_CAPS) || raw.cap_offset == 0)
    return info;
  DP_RETURN_IF_ERROR(WalkCaps(
      buf, raw.cap_offset, "region info",
      [&](const vfio_info_cap_header& h, size_t off) -> Status {
        switch (h.id) {
          case VFIO_REGION_INFO_CAP_SPARSE_MMAP: {
            vfio_region_info_cap_sparse_mmap cap{};
            if (!Load(buf, off, &cap)) return Corrupt("region info");
            std::vector<SparseMmapArea> areas;
            size_t at = off + sizeof(vfio_region_info_cap_sparse_mmap);
            for (uint32_t i = 0; i < cap.nr_areas; ++i) {
              vfio_region_sparse_mmap_area area{};
              if (!Load(buf, at + i * sizeof(vfio_region_sparse_mmap_area),
                        &area))
                return Corrupt("region info");
              areas.push_back({area.offset, area.size});
            }
            info.sparse_areas = std::move(areas);
            break;
          }
          case VFIO_REGION_INFO_CAP_TYPE: {
            vfio_region_info_cap_type cap{};
            if (!Load(buf, off, &cap)) return Corrupt("region info");
            info.type = RegionType{cap.type, cap.subtype};
            break;
          }
          case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
            info.msix_mappable = true;
            break;
          default:
            break;  // unknown caps (NVLink2, newer ones) are skipped, not
                    // errors
        }
        return Ok();
      }));
  return info;
}

Result<IommuInfo> ParseIommuInfo(std::span<const uint8_t> buf) {
  vfio_iommu_type1_info raw{};
  if (!Load(buf, 0, &raw)) return Corrupt("IOMMU info");
  IommuInfo info;
  info.flags = raw.flags;
  info.iova_pgsizes = raw.iova_pgsizes;
  if (!(raw.flags & VFIO_IOMMU_INFO_CAPS) || raw.cap_offset == 0) return info;
  DP_RETURN_IF_ERROR(WalkCaps(
      buf, raw.cap_offset, "IOMMU info",
      [&](const vfio_info_cap_header& h, size_t off) -> Status {
        if (h.id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
          vfio_iommu_type1_info_cap_iova_range cap{};
          if (!Load(buf, off, &cap)) return Corrupt("IOMMU info");
          size_t at = off + sizeof(vfio_iommu_type1_info_cap_iova_range);
          for (uint32_t i = 0; i < cap.nr_iovas; ++i) {
            vfio_iova_range r{};
            if (!Load(buf, at + i * sizeof(vfio_iova_range), &r))
              return Corrupt("IOMMU info");
            info.iova_ranges.push_back({r.start, r.end});
          }
        } else if (h.id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
          vfio_iommu_type1_info_dma_avail cap{};
          if (!Load(buf, off, &cap)) return Corrupt("IOMMU info");
          info.dma_avail = cap.avail;
        }
        return Ok();
      }));
  return info;
}

Result<HotResetInfo> ParseHotResetInfo(std::span<const uint8_t> buf) {
  vfio_pci_hot_reset_info raw{};
  if (!Load(buf, 0, &raw)) return Corrupt("hot reset info");
  HotResetInfo info;
  info.flags = raw.flags;
  size_t at = sizeof(vfio_pci_hot_reset_info);
  for (uint32_t i = 0; i < raw.count; ++i) {
    vfio_pci_dependent_device d{};
    if (!Load(buf, at + i * sizeof(vfio_pci_dependent_device), &d))
      return Corrupt("hot reset info");
    info.devices.push_back({d.group_id, d.segment, d.bus, d.devfn});
  }
  return info;
}

std::vector<uint8_t> EncodeRegionInfo(const RegionInfo& info) {
  std::vector<uint8_t> buf(sizeof(vfio_region_info), 0);
  vfio_region_info raw{};
  raw.flags = info.flags;
  raw.index = info.index;
  raw.size = info.size;
  raw.offset = info.offset;
  Store(buf, 0, raw);
  size_t link = offsetof(vfio_region_info, cap_offset);
  bool any = false;
  if (info.sparse_areas) {
    std::vector<uint8_t> body;
    AppendBytes(body, static_cast<uint32_t>(info.sparse_areas->size()));
    AppendBytes(body, uint32_t{0});
    for (const auto& a : *info.sparse_areas) {
      AppendBytes(body, vfio_region_sparse_mmap_area{a.offset, a.size});
    }
    AppendCap(buf, &link, VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, body);
    any = true;
  }
  if (info.type) {
    std::vector<uint8_t> body;
    AppendBytes(body, info.type->type);
    AppendBytes(body, info.type->subtype);
    AppendCap(buf, &link, VFIO_REGION_INFO_CAP_TYPE, 1, body);
    any = true;
  }
  if (info.msix_mappable) {
    AppendCap(buf, &link, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1, {});
    any = true;
  }
  uint32_t flags = info.flags | (any ? VFIO_REGION_INFO_FLAG_CAPS : 0);
  Store(buf, offsetof(vfio_region_info, flags), flags);
  Store(buf, 0, static_cast<uint32_t>(buf.size()));
  return buf;
}

std::vector<uint8_t> EncodeIommuInfo(const IommuInfo& info) {
  std::vector<uint8_t> buf(sizeof(vfio_iommu_type1_info), 0);
  vfio_iommu_type1_info raw{};
  raw.flags = info.flags;
  raw.iova_pgsizes = info.iova_pgsizes;
  Store(buf, 0, raw);
  size_t link = offsetof(vfio_iommu_type1_info, cap_offset);
  bool any = false;
  if (!info.iova_ranges.empty()) {
    std::vector<uint8_t> body;
    AppendBytes(body, static_cast<uint32_t>(info.iova_ranges.size()));
    AppendBytes(body, uint32_t{0});
    for (const auto& r : info.iova_ranges)
      AppendBytes(body, vfio_iova_range{r.start, r.end});
    AppendCap(buf, &link, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, body);
    any = true;
  }
  if (info.dma_avail) {
    std::vector<uint8_t> body;
    AppendBytes(body, *info.dma_avail);
    AppendCap(buf, &link, VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, body);
    any = true;
  }
  uint32_t flags = info.flags | (any ? VFIO_IOMMU_INFO_CAPS : 0);
  Store(buf, offsetof(vfio_iommu_type1_info, flags), flags);
  Store(buf, 0, static_cast<uint32_t>(buf.size()));
  return buf;
}

}  // namespace devpass::vfio
