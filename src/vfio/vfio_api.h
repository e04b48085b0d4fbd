#pragma once

// The seam between devpass's VFIO layer and the kernel. Every system call the
// layer makes on /dev/vfio/vfio, /dev/vfio/N and a device fd goes through
// VfioApi, one typed method per VFIO ioctl (linux/vfio.h, kernel 6.1 UAPI).
// The kernel implementation (vfio_api_kernel.cc) is a thin ioctl(2) wrapper;
// FakeVfioApi (tests/support/vfio/fake_vfio_api.h) keeps containers, groups and
// devices in memory so the layers above (guest-side PCI, assignment) test
// without an IOMMU.
//
// The cut follows cloud-hypervisor's vfio-ioctls: one method per ioctl, with
// variable-length answers (capability chains, hot-reset lists) returned
// already parsed. Errors are plain errno errors with a neutral message; the
// layer above (container.cc, group.cc, device.cc) knows the context and turns
// them into messages that say what to do.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace devpass::vfio {

// VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE entry. `end` is inclusive, as the
// kernel reports it.
struct IovaRange {
  uint64_t start = 0;
  uint64_t end = 0;
};

// VFIO_IOMMU_GET_INFO (struct vfio_iommu_type1_info and its caps).
struct IommuInfo {
  uint32_t flags = 0;                  // VFIO_IOMMU_INFO_PGSIZES | _CAPS
  uint64_t iova_pgsizes = 0;           // bitmap of supported IOMMU page sizes
  std::vector<IovaRange> iova_ranges;  // empty: the kernel gave no IOVA cap
  std::optional<uint32_t> dma_avail;   // VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
};

// VFIO_DEVICE_GET_INFO.
struct DeviceInfo {
  uint32_t flags = 0;  // VFIO_DEVICE_FLAGS_*
  uint32_t num_regions = 0;
  uint32_t num_irqs = 0;
};

// One VFIO_REGION_INFO_CAP_SPARSE_MMAP area, relative to the region start.
struct SparseMmapArea {
  uint64_t offset = 0;
  uint64_t size = 0;
};

// VFIO_REGION_INFO_CAP_TYPE.
struct RegionType {
  uint32_t type = 0;
  uint32_t subtype = 0;
};

// VFIO_DEVICE_GET_REGION_INFO with its capability chain parsed.
struct RegionInfo {
  uint32_t index = 0;
  uint32_t flags = 0;   // VFIO_REGION_INFO_FLAG_*
  uint64_t size = 0;    // 0: region not implemented (e.g. an unused BAR)
  uint64_t offset = 0;  // offset of the region in the device fd
  // Present when the kernel sent a sparse mmap cap: only these areas may be
  // mmapped. Absent: the whole region may be (if FLAG_MMAP).
  std::optional<std::vector<SparseMmapArea>> sparse_areas;
  bool msix_mappable = false;  // VFIO_REGION_INFO_CAP_MSIX_MAPPABLE
  std::optional<RegionType> type;
};

// VFIO_DEVICE_GET_IRQ_INFO.
struct IrqInfo {
  uint32_t index = 0;
  uint32_t flags = 0;  // VFIO_IRQ_INFO_*
  uint32_t count = 0;  // 0: not implemented
};

// VFIO_DEVICE_SET_IRQS. Exactly one of the data kinds is used, chosen by the
// DATA_* bit in `flags`: `eventfds` for DATA_EVENTFD (one per vector in
// [start, start+count), -1 = de-assign/skip), `bools` for DATA_BOOL.
struct IrqSet {
  uint32_t flags = 0;  // VFIO_IRQ_SET_DATA_* | VFIO_IRQ_SET_ACTION_*
  uint32_t index = 0;
  uint32_t start = 0;
  uint32_t count = 0;
  std::vector<int32_t> eventfds;
  std::vector<uint8_t> bools;
};

// One entry of VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: a function a bus or slot
// reset would also reset.
struct HotResetDevice {
  uint32_t group_id = 0;
  uint16_t segment = 0;
  uint8_t bus = 0;
  uint8_t devfn = 0;  // PCI_SLOT(devfn), PCI_FUNC(devfn)
};

struct HotResetInfo {
  uint32_t flags = 0;
  std::vector<HotResetDevice> devices;
};

// VFIO_IOMMU_MAP_DMA arguments (struct vfio_iommu_type1_dma_map).
struct DmaMapArgs {
  uint64_t vaddr = 0;
  uint64_t iova = 0;
  uint64_t size = 0;
  uint32_t flags = 0;  // VFIO_DMA_MAP_FLAG_READ | _WRITE
};

class VfioApi {
 public:
  virtual ~VfioApi() = default;

  // open(path, O_RDWR | O_CLOEXEC) for /dev/vfio/vfio and /dev/vfio/N.
  virtual Result<int> Open(const std::filesystem::path& path) = 0;
  virtual void Close(int fd) = 0;

  // Container fd.
  virtual Result<int> GetApiVersion(int container) = 0;  // VFIO_GET_API_VERSION
  virtual Result<bool> CheckExtension(
      int container, uint32_t ext) = 0;  // VFIO_CHECK_EXTENSION
  virtual Status SetIommu(int container,
                          uint32_t iommu_type) = 0;  // VFIO_SET_IOMMU
  virtual Result<IommuInfo> GetIommuInfo(
      int container) = 0;  // VFIO_IOMMU_GET_INFO
  virtual Status MapDma(int container,
                        const DmaMapArgs& args) = 0;  // VFIO_IOMMU_MAP_DMA
  // VFIO_IOMMU_UNMAP_DMA; returns the size the kernel unmapped.
  virtual Result<uint64_t> UnmapDma(int container, uint64_t iova,
                                    uint64_t size) = 0;

  // Group fd.
  virtual Result<uint32_t> GetGroupStatus(
      int group) = 0;  // VFIO_GROUP_GET_STATUS flags
  virtual Status SetContainer(int group,
                              int container) = 0;  // VFIO_GROUP_SET_CONTAINER
  virtual Status UnsetContainer(int group) = 0;    // VFIO_GROUP_UNSET_CONTAINER
  // VFIO_GROUP_GET_DEVICE_FD with the device name ("0000:00:03.0").
  virtual Result<int> GetDeviceFd(int group, const std::string& name) = 0;

  // Device fd.
  virtual Result<DeviceInfo> GetDeviceInfo(int device) = 0;
  // Re-queries with the argsz the kernel asks for, so the capability chain
  // arrives whole, and returns it parsed.
  virtual Result<RegionInfo> GetRegionInfo(int device, uint32_t index) = 0;
  virtual Result<IrqInfo> GetIrqInfo(int device, uint32_t index) = 0;
  virtual Status SetIrqs(int device, const IrqSet& set) = 0;
  virtual Status Reset(int device) = 0;  // VFIO_DEVICE_RESET
  // VFIO_DEVICE_GET_PCI_HOT_RESET_INFO (ENOSPC re-query done inside).
  virtual Result<HotResetInfo> GetHotResetInfo(int device) = 0;
  // pread/pwrite at `offset` in the device fd (region offset + offset in the
  // region). Returns bytes transferred.
  virtual Result<size_t> Pread(int device, void* buf, size_t len,
                               uint64_t offset) = 0;
  virtual Result<size_t> Pwrite(int device, const void* buf, size_t len,
                                uint64_t offset) = 0;
  // mmap(NULL, len, prot, MAP_SHARED, device, offset).
  virtual Result<void*> Mmap(int device, uint64_t offset, size_t len,
                             int prot) = 0;
  virtual void Munmap(void* addr, size_t len) = 0;

  // The process's RLIMIT_MEMLOCK soft limit in bytes (UINT64_MAX = unlimited).
  // Type1 pins every mapped page and charges it against this limit.
  virtual uint64_t MemlockLimit() = 0;
};

// The real thing: ioctl(2), pread(2), mmap(2) on real fds.
std::shared_ptr<VfioApi> NewKernelVfioApi();

}  // namespace devpass::vfio
