// VfioApi on the real kernel: each method is one system call on the fd it is
// given (linux/vfio.h, 6.1 UAPI). Nothing here knows about devpass's policy;
// errors carry errno and a neutral message that the layer above rewrites.

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "vfio/caps.h"
#include "vfio/vfio_api.h"

namespace devpass::vfio {
namespace {

tl::unexpected<Error> IoctlError(std::string_view name, int fd) {
  int err = errno;
  return ErrnoError(err, fmt::format("{} on fd {} failed", name, fd));
}

// ioctl(2) retried on EINTR (MAP_DMA of a large range can be interrupted).
int Ioctl(int fd, unsigned long request, auto arg) {
  int r;
  do {
    r = ::ioctl(fd, request, arg);
  } while (r < 0 && errno == EINTR);
  return r;
}

class KernelVfioApi final : public VfioApi {
 public:
  Result<int> Open(const std::filesystem::path& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return ErrnoError(err, fmt::format("cannot open {}", path.string()));
    }
    return fd;
  }

  void Close(int fd) override { ::close(fd); }

  Result<int> GetApiVersion(int container) override {
    int r = Ioctl(container, VFIO_GET_API_VERSION, 0);
    if (r < 0) return IoctlError("VFIO_GET_API_VERSION", container);
    return r;
  }

  Result<bool> CheckExtension(int container, uint32_t ext) override {
    int r =
        Ioctl(container, VFIO_CHECK_EXTENSION, static_cast<unsigned long>(ext));
    if (r < 0) return IoctlError("VFIO_CHECK_EXTENSION", container);
    return r > 0;
  }

  Status SetIommu(int container, uint32_t iommu_type) override {
    if (Ioctl(container, VFIO_SET_IOMMU,
              static_cast<unsigned long>(iommu_type)) < 0) {
      return IoctlError("VFIO_SET_IOMMU", container);
    }
    return Ok();
  }

  Result<IommuInfo> GetIommuInfo(int container) override {
    DP_ASSIGN_OR_RETURN(
        auto buf,
        QueryGrowing(
            sizeof(vfio_iommu_type1_info), [&](std::vector<uint8_t>& b) {
              return Ioctl(container, VFIO_IOMMU_GET_INFO, b.data()) < 0 ? errno
                                                                         : 0;
            }));
    return ParseIommuInfo(buf);
  }

  Status MapDma(int container, const DmaMapArgs& args) override {
    vfio_iommu_type1_dma_map map{};
    map.argsz = sizeof(map);
    map.flags = args.flags;
    map.vaddr = args.vaddr;
    map.iova = args.iova;
    map.size = args.size;
    if (Ioctl(container, VFIO_IOMMU_MAP_DMA, &map) < 0) {
      return IoctlError("VFIO_IOMMU_MAP_DMA", container);
    }
    return Ok();
  }

  Result<uint64_t> UnmapDma(int container, uint64_t iova,
                            uint64_t size) override {
    vfio_iommu_type1_dma_unmap unmap{};
    unmap.argsz = sizeof(unmap);
    unmap.iova = iova;
    unmap.size = size;
    if (Ioctl(container, VFIO_IOMMU_UNMAP_DMA, &unmap) < 0) {
      return IoctlError("VFIO_IOMMU_UNMAP_DMA", container);
    }
    return unmap.size;
  }

  Result<uint32_t> GetGroupStatus(int group) override {
    vfio_group_status status{};
    status.argsz = sizeof(status);
    if (Ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0) {
      return IoctlError("VFIO_GROUP_GET_STATUS", group);
    }
    return status.flags;
  }

  Status SetContainer(int group, int container) override {
    if (Ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0) {
      return IoctlError("VFIO_GROUP_SET_CONTAINER", group);
    }
    return Ok();
  }

  Status UnsetContainer(int group) override {
    if (Ioctl(group, VFIO_GROUP_UNSET_CONTAINER, 0) < 0) {
      return IoctlError("VFIO_GROUP_UNSET_CONTAINER", group);
    }
    return Ok();
  }

  Result<int> GetDeviceFd(int group, const std::string& name) override {
    int fd = Ioctl(group, VFIO_GROUP_GET_DEVICE_FD, name.c_str());
    if (fd < 0) return IoctlError("VFIO_GROUP_GET_DEVICE_FD", group);
    return fd;
  }

  Result<DeviceInfo> GetDeviceInfo(int device) override {
    vfio_device_info info{};
    info.argsz = sizeof(info);
    if (Ioctl(device, VFIO_DEVICE_GET_INFO, &info) < 0) {
      return IoctlError("VFIO_DEVICE_GET_INFO", device);
    }
    return DeviceInfo{info.flags, info.num_regions, info.num_irqs};
  }

  Result<RegionInfo> GetRegionInfo(int device, uint32_t index) override {
    DP_ASSIGN_OR_RETURN(
        auto buf,
        QueryGrowing(sizeof(vfio_region_info), [&](std::vector<uint8_t>& b) {
          // index sits right after argsz and flags.
          std::memcpy(b.data() + offsetof(vfio_region_info, index), &index,
                      sizeof(index));
          return Ioctl(device, VFIO_DEVICE_GET_REGION_INFO, b.data()) < 0
                     ? errno
                     : 0;
        }));
    return ParseRegionInfo(buf);
  }

  Result<IrqInfo> GetIrqInfo(int device, uint32_t index) override {
    vfio_irq_info info{};
    info.argsz = sizeof(info);
    info.index = index;
    if (Ioctl(device, VFIO_DEVICE_GET_IRQ_INFO, &info) < 0) {
      return IoctlError("VFIO_DEVICE_GET_IRQ_INFO", device);
    }
    return IrqInfo{info.index, info.flags, info.count};
  }

  Status SetIrqs(int device, const IrqSet& set) override {
    // struct vfio_irq_set is followed by `count` s32 fds or u8 bools.
    size_t data_size = 0;
    const void* data = nullptr;
    if (set.flags & VFIO_IRQ_SET_DATA_EVENTFD) {
      data_size = set.eventfds.size() * sizeof(int32_t);
      data = set.eventfds.data();
    } else if (set.flags & VFIO_IRQ_SET_DATA_BOOL) {
      data_size = set.bools.size();
      data = set.bools.data();
    }
    std::vector<uint8_t> buf(sizeof(vfio_irq_set) + data_size, 0);
    vfio_irq_set header{};
    header.argsz = static_cast<uint32_t>(buf.size());
    header.flags = set.flags;
    header.index = set.index;
    header.start = set.start;
    header.count = set.count;
    std::memcpy(buf.data(), &header, sizeof(header));
    if (data_size) std::memcpy(buf.data() + sizeof(header), data, data_size);
    if (Ioctl(device, VFIO_DEVICE_SET_IRQS, buf.data()) < 0) {
      return IoctlError("VFIO_DEVICE_SET_IRQS", device);
    }
    return Ok();
  }

  Status Reset(int device) override {
    if (Ioctl(device, VFIO_DEVICE_RESET, 0) < 0)
      return IoctlError("VFIO_DEVICE_RESET", device);
    return Ok();
  }

  Result<HotResetInfo> GetHotResetInfo(int device) override {
    // Unlike the region/IOMMU info, this one answers a short buffer with
    // ENOSPC and the device count in `count`.
    std::vector<uint8_t> buf(sizeof(vfio_pci_hot_reset_info), 0);
    for (int attempt = 0; attempt < 4; ++attempt) {
      vfio_pci_hot_reset_info header{};
      header.argsz = static_cast<uint32_t>(buf.size());
      std::memcpy(buf.data(), &header, sizeof(header));
      if (Ioctl(device, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, buf.data()) == 0) {
        return ParseHotResetInfo(buf);
      }
      if (errno != ENOSPC)
        return IoctlError("VFIO_DEVICE_GET_PCI_HOT_RESET_INFO", device);
      std::memcpy(&header, buf.data(), sizeof(header));
      buf.assign(
          sizeof(header) + header.count * sizeof(vfio_pci_dependent_device), 0);
    }
    return MakeError(ErrorCode::kInternal,
                     "hot reset device list kept growing");
  }

  Result<size_t> Pread(int device, void* buf, size_t len,
                       uint64_t offset) override {
    ssize_t n;
    do {
      n = ::pread(device, buf, len, static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int err = errno;
      return ErrnoError(
          err, fmt::format("pread of {} bytes at 0x{:x} on fd {} failed", len,
                           offset, device));
    }
    return static_cast<size_t>(n);
  }

  Result<size_t> Pwrite(int device, const void* buf, size_t len,
                        uint64_t offset) override {
    ssize_t n;
    do {
      n = ::pwrite(device, buf, len, static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      int err = errno;
      return ErrnoError(
          err, fmt::format("pwrite of {} bytes at 0x{:x} on fd {} failed", len,
                           offset, device));
    }
    return static_cast<size_t>(n);
  }

  Result<void*> Mmap(int device, uint64_t offset, size_t len,
                     int prot) override {
    void* p = ::mmap(nullptr, len, prot, MAP_SHARED, device,
                     static_cast<off_t>(offset));
    if (p == MAP_FAILED) {
      int err = errno;
      return ErrnoError(
          err, fmt::format("mmap of {} bytes at 0x{:x} on fd {} failed", len,
                           offset, device));
    }
    return p;
  }

  void Munmap(void* addr, size_t len) override { ::munmap(addr, len); }

  uint64_t MemlockLimit() override {
    rlimit lim{};
    if (::getrlimit(RLIMIT_MEMLOCK, &lim) != 0 ||
        lim.rlim_cur == RLIM_INFINITY) {
      return UINT64_MAX;
    }
    return lim.rlim_cur;
  }
};

}  // namespace

std::shared_ptr<VfioApi> NewKernelVfioApi() {
  return std::make_shared<KernelVfioApi>();
}

}  // namespace devpass::vfio
