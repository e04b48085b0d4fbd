#pragma once

// Where a device's DMA goes: an IOMMU context that devices are attached to
// and that maps process memory at I/O virtual addresses (IOVAs).
//
// Two kernel interfaces implement this idea:
//   * VFIO type1 (this tree's Container): /dev/vfio/vfio + /dev/vfio/N,
//     attach = VFIO_GROUP_SET_CONTAINER of the device's group, map =
//     VFIO_IOMMU_MAP_DMA. Available in every kernel we target (6.1).
//   * iommufd + VFIO cdev: /dev/iommu + /dev/vfio/devices/vfioX, attach =
//     VFIO_DEVICE_BIND_IOMMUFD + VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS,
//     map = IOMMU_IOAS_MAP. iommufd arrived in 6.2 and the VFIO cdev in 6.6,
//     so Debian 12's 6.1 kernel and headers have neither (docs/vfio.md).
// An IommufdBackend would implement this interface beside Container: the
// layers above (DmaMapping, guest memory, assignment) only see IommuBackend.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "vfio/vfio_api.h"

namespace devpass::vfio {

class Device;

// One line of /sys/kernel/iommu_groups/N/reserved_regions:
// "0x00000000fee00000 0x00000000feefffff msi". `end` is inclusive.
struct ReservedRegion {
  uint64_t start = 0;
  uint64_t end = 0;
  std::string type;  // direct, direct-relaxable, reserved, msi, sw-msi
};

class IommuBackend {
 public:
  virtual ~IommuBackend() = default;

  // "vfio-type1v2", "vfio-type1" (later: "iommufd").
  virtual std::string name() const = 0;

  // Opens the device and attaches it to this IOMMU context, so that its DMA
  // is translated through the mappings made here.
  virtual Result<Device> OpenDevice(const PciAddress& address) = 0;

  // Maps [vaddr, vaddr+size) of this process at `iova`. Refuses IOVAs outside
  // the usable ranges or inside a reserved region, with a message. Prefer
  // DmaMapping, which unmaps on destruction.
  virtual Status MapDma(const DmaMapArgs& args) = 0;
  virtual Status UnmapDma(uint64_t iova, uint64_t size) = 0;

  // Usable IOVA ranges and page sizes (filled once a device is attached).
  virtual const IommuInfo& iommu_info() const = 0;
  // Reserved regions of every attached group.
  virtual std::vector<ReservedRegion> reserved_regions() const = 0;
  // Bumped whenever the kernel dropped every mapping (the last device left,
  // so type1 released its IOMMU): a DmaMapping made in an older epoch has
  // nothing left to unmap.
  virtual uint64_t epoch() const = 0;
};

}  // namespace devpass::vfio
