#pragma once

// Parsers for the variable-length answers of VFIO info ioctls (linux/vfio.h):
// a fixed struct followed by a capability chain, each capability starting
// with struct vfio_info_cap_header {u16 id; u16 version; u32 next;} where
// `next` is an offset from the start of the info struct and 0 ends the chain.
// Kept apart from the ioctl code so they are unit-tested on byte buffers, and
// so the fake can produce the kernel's exact encoding (EncodeRegionInfo...).

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/error.h"
#include "vfio/vfio_api.h"

namespace devpass::vfio {

// Calls `query(buffer)` with a buffer whose first u32 is argsz = its size.
// The kernel answers a too-small buffer by setting argsz to the size it needs
// (region/IOMMU info with caps), so while the returned argsz is larger the
// buffer grows and the query repeats (at most a few times: a chain that keeps
// growing is a kernel bug). `query` returns 0 or an errno.
Result<std::vector<uint8_t>> QueryGrowing(
    size_t initial_size,
    const std::function<int(std::vector<uint8_t>&)>& query);

Result<RegionInfo> ParseRegionInfo(std::span<const uint8_t> buf);
Result<IommuInfo> ParseIommuInfo(std::span<const uint8_t> buf);
Result<HotResetInfo> ParseHotResetInfo(std::span<const uint8_t> buf);

// The kernel's encoding of the same structures (argsz = total size, caps
// chained in the order sparse mmap, type, MSI-X mappable / IOVA ranges, DMA
// avail). Used by the fake and by tests of the parsers.
std::vector<uint8_t> EncodeRegionInfo(const RegionInfo& info);
std::vector<uint8_t> EncodeIommuInfo(const IommuInfo& info);

}  // namespace devpass::vfio
