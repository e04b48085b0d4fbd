#pragma once

// A VFIO device fd (VFIO_GROUP_GET_DEVICE_FD): the abstract device the guest
// side builds on. It knows its regions (BARs, ROM, config space, VGA, and
// device-specific ones with their capability chains), its interrupt indexes,
// and how to program interrupts, read/write config space, mmap BARs and
// reset. Teardown: interrupts it enabled are disabled, then the fd closes;
// the Device holds its Group, which is closed after the last device.

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "vfio/handles.h"
#include "vfio/vfio_api.h"

namespace devpass::vfio {

class Group;

// "BAR0".."BAR5", "ROM", "CONFIG", "VGA", else "REGION<n>".
std::string RegionName(uint32_t index);
// "INTx", "MSI", "MSI-X", "ERR", "REQ", else "IRQ<n>".
std::string IrqName(uint32_t index);

class Device {
 public:
  // Used by IOMMU backends: takes a device fd already attached to an IOMMU
  // context and reads its info, every region's info and every IRQ's info.
  static Result<Device> Create(std::shared_ptr<VfioApi> api,
                               std::shared_ptr<Group> group, VfioFd fd,
                               const PciAddress& address);

  ~Device();
  Device(Device&&) noexcept = default;
  Device& operator=(Device&&) noexcept;
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  const PciAddress& address() const { return address_; }
  const DeviceInfo& info() const { return info_; }
  bool is_pci() const;
  // VFIO_DEVICE_FLAGS_RESET: the kernel knows a reset method (FLR, PM, bus).
  bool supports_reset() const;
  const std::vector<RegionInfo>& regions() const { return regions_; }
  // nullptr when the index is beyond num_regions.
  const RegionInfo* region(uint32_t index) const;
  const std::vector<IrqInfo>& irqs() const { return irqs_; }
  const IrqInfo* irq(uint32_t index) const;
  const Group& group() const { return *group_; }
  int fd() const { return fd_.get(); }

  // Region access with pread/pwrite (works for every readable region, also
  // those that cannot be mmapped, e.g. config space and I/O port BARs).
  Status ReadRegion(uint32_t index, uint64_t offset,
                    std::span<uint8_t> out) const;
  Status WriteRegion(uint32_t index, uint64_t offset,
                     std::span<const uint8_t> data) const;

  // Config space through VFIO's config region: the kernel virtualizes parts
  // of it (BARs, MSI/MSI-X control, some command bits).
  Status ReadConfig(uint64_t offset, std::span<uint8_t> out) const;
  Status WriteConfig(uint64_t offset, std::span<const uint8_t> data) const;
  Result<uint8_t> ReadConfig8(uint64_t offset) const;
  Result<uint16_t> ReadConfig16(uint64_t offset) const;
  Result<uint32_t> ReadConfig32(uint64_t offset) const;
  Status WriteConfig16(uint64_t offset, uint16_t value) const;
  Status WriteConfig32(uint64_t offset, uint32_t value) const;
  // The whole config region (256 or 4096 bytes).
  Result<std::vector<uint8_t>> ReadConfigSpace() const;

  // mmap of [offset, offset+size) of a region. Refuses regions without
  // FLAG_MMAP and ranges outside the sparse mmap areas, naming them.
  Result<Mapping> MapRegion(uint32_t index, uint64_t offset,
                            uint64_t size) const;
  // The whole region, when one mapping can cover it.
  Result<Mapping> MapRegion(uint32_t index) const;

  // --- Interrupts (VFIO_DEVICE_SET_IRQS). Eventfds stay owned by the caller.
  // INTx: `trigger_fd` is signalled on each interrupt; VFIO then masks the
  // line (AUTOMASKED) until it is unmasked: by UnmaskIntx(), or by the kernel
  // when `unmask_fd` (>= 0, e.g. a KVM irqfd resamplefd) is signalled.
  Status EnableIntx(int trigger_fd, int unmask_fd = -1);
  Status UnmaskIntx();
  Status MaskIntx();
  // MSI / MSI-X (or ERR/REQ): enables the index with one eventfd per vector,
  // vectors [0, fds.size()); -1 leaves a vector unassigned.
  Status EnableVectors(uint32_t index, std::span<const int> fds);
  // Sets one vector's eventfd (-1 detaches it). If the vector lies beyond
  // those enabled and the index is NORESIZE (MSI always; MSI-X on kernels
  // before 6.5, which lack dynamic MSI-X allocation), the kernel cannot grow
  // it in place: the index is disabled and re-enabled with all vectors.
  Status SetVector(uint32_t index, uint32_t vector, int fd);
  Status DisableIrqs(uint32_t index);
  // Vectors currently enabled at the index (0 = disabled).
  uint32_t enabled_vectors(uint32_t index) const;

  // VFIO_DEVICE_RESET. kUnsupported "no reset" when the kernel has no reset
  // method for the device (flag clear, or EINVAL/ENOTTY from the ioctl).
  Status Reset() const;
  // Functions a hot (bus/slot) reset would also reset; kUnsupported when the
  // device cannot be hot reset (ENODEV).
  Result<HotResetInfo> GetHotResetInfo() const;

 private:
  Device(std::shared_ptr<VfioApi> api, std::shared_ptr<Group> group, VfioFd fd,
         PciAddress address)
      : api_(std::move(api)),
        group_(std::move(group)),
        fd_(std::move(fd)),
        address_(address) {}

  Status SetIrqs(const IrqSet& set) const;
  Status EnableIndex(uint32_t index, const std::vector<int>& fds);
  void DisableAll();

  std::shared_ptr<VfioApi> api_;
  std::shared_ptr<Group> group_;
  VfioFd fd_;
  PciAddress address_;
  DeviceInfo info_;
  std::vector<RegionInfo> regions_;
  std::vector<IrqInfo> irqs_;
  // Enabled IRQ indexes and the eventfd per vector (-1 = none).
  std::map<uint32_t, std::vector<int>> irq_fds_;
};

}  // namespace devpass::vfio
