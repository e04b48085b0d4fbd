#pragma once

// An in-memory VfioApi for tests of this layer and of the layers above
// (guest-side PCI, assignment). It follows the kernel's rules where they
// matter to callers (linux/vfio.h, drivers/vfio in 6.1): a group opens once;
// SET_IOMMU needs a group and happens once; the device fd needs the IOMMU
// set; INTx/MSI/MSI-X exclude each other; a NORESIZE index cannot grow while
// enabled; the last group leaving drops the IOMMU and its mappings.
//
// It records every call in `log` (one line each, e.g. "SET_IOMMU 100 type=3",
// "close 102"), keeps each SET_IRQS and MAP_DMA, holds region contents in
// memory (config space too; mmap returns a pointer into them) and fails the
// next call of an operation with an injected errno (FailNext).
//
// Lives in the library, not under tests/, so any test binary can use it;
// nothing in devpass links it unless a test refers to it.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vfio/vfio_api.h"

namespace devpass::vfio {

struct FakeRegion {
  RegionInfo info;  // offset: left 0 = the fake uses index << 40 like vfio-pci
  std::vector<uint8_t> data;  // contents; resized to info.size
};

struct FakeDeviceSpec {
  std::string name;                 // "0000:00:03.0"
  uint32_t flags = 0;               // VFIO_DEVICE_FLAGS_*
  std::vector<FakeRegion> regions;  // by index; num_regions = size()
  std::vector<IrqInfo> irqs;        // by index; num_irqs = size()
  // GET_PCI_HOT_RESET_INFO answer; nullopt = ENODEV (no hot reset).
  std::optional<HotResetInfo> hot_reset;
  int reset_errno = 0;  // VFIO_DEVICE_RESET answer (EINVAL: no reset method)
};

// QEMU's edu device (1234:11e8) as vfio-pci shows it: BAR0 1 MiB mmappable,
// config space with an MSI capability, INTx + 1 MSI vector, no reset.
FakeDeviceSpec FakeEduDevice(const std::string& name);
// A PCIe device with a 16 KiB BAR0 holding registers, the MSI-X table at
// 0x2000 (`vectors` entries) and the PBA at 0x3000: BAR0 has a sparse mmap
// cap leaving out the table page, BAR2 is 64 KiB with MSIX_MAPPABLE; reset
// and hot reset (affecting `hot_reset_peer` too when non-empty) supported.
FakeDeviceSpec FakeMsixDevice(const std::string& name, uint32_t vectors = 8,
                              bool msix_noresize = true,
                              const std::string& hot_reset_peer = "");

class FakeVfioApi final : public VfioApi {
 public:
  FakeVfioApi();
  ~FakeVfioApi() override;

  // --- Setup.
  void AddGroup(int number, bool viable = true);
  void SetGroupViable(int number, bool viable);
  void AddDevice(int group, FakeDeviceSpec spec);
  // The next `times` calls of `op` fail with `err`. Ops: OPEN_CONTAINER,
  // OPEN_GROUP, GET_API_VERSION, CHECK_EXTENSION, SET_IOMMU, IOMMU_GET_INFO,
  // MAP_DMA, UNMAP_DMA, GROUP_GET_STATUS, SET_CONTAINER, GET_DEVICE_FD,
  // DEVICE_GET_INFO, GET_REGION_INFO, GET_IRQ_INFO, SET_IRQS, RESET,
  // HOT_RESET_INFO, PREAD, PWRITE, MMAP.
  void FailNext(const std::string& op, int err, int times = 1);

  int api_version;
  std::set<uint32_t> extensions;  // default: TYPE1, TYPE1v2, UNMAP_ALL
  IommuInfo iommu_info;  // default: 4K/2M/1G, x86-like IOVA ranges, dma_avail
  uint64_t memlock_limit = 64ull << 20;  // MAP_DMA beyond it: ENOMEM

  // --- Observation.
  std::vector<std::string> log;
  std::vector<IrqSet> irq_sets;
  std::vector<DmaMapArgs> dma_maps;
  std::map<uint64_t, uint64_t>
      live_dma;  // iova -> size, as the "kernel" holds it
  // Lines of `log` starting with `prefix`, in order.
  std::vector<std::string> Calls(const std::string& prefix) const;
  size_t open_fds() const { return fds_.size(); }
  uint32_t iommu_type_set() const { return iommu_type_; }
  // Live region contents (what pwrite/mmap writes change).
  std::vector<uint8_t>& RegionData(const std::string& device, uint32_t index);
  // Vectors enabled at an index and their eventfds (empty = disabled).
  std::vector<int32_t> EnabledVectors(const std::string& device,
                                      uint32_t index) const;
  bool intx_masked(const std::string& device) const;
  // Raises an interrupt the way the kernel does: signals the trigger eventfd
  // (INTx also becomes masked until unmasked). False if nothing is wired.
  bool FireIrq(const std::string& device, uint32_t index, uint32_t vector = 0);

  // --- VfioApi.
  Result<int> Open(const std::filesystem::path& path) override;
  void Close(int fd) override;
  Result<int> GetApiVersion(int container) override;
  Result<bool> CheckExtension(int container, uint32_t ext) override;
  Status SetIommu(int container, uint32_t iommu_type) override;
  Result<IommuInfo> GetIommuInfo(int container) override;
  Status MapDma(int container, const DmaMapArgs& args) override;
  Result<uint64_t> UnmapDma(int container, uint64_t iova,
                            uint64_t size) override;
  Result<uint32_t> GetGroupStatus(int group) override;
  Status SetContainer(int group, int container) override;
  Status UnsetContainer(int group) override;
  Result<int> GetDeviceFd(int group, const std::string& name) override;
  Result<DeviceInfo> GetDeviceInfo(int device) override;
  Result<RegionInfo> GetRegionInfo(int device, uint32_t index) override;
  Result<IrqInfo> GetIrqInfo(int device, uint32_t index) override;
  Status SetIrqs(int device, const IrqSet& set) override;
  Status Reset(int device) override;
  Result<HotResetInfo> GetHotResetInfo(int device) override;
  Result<size_t> Pread(int device, void* buf, size_t len,
                       uint64_t offset) override;
  Result<size_t> Pwrite(int device, const void* buf, size_t len,
                        uint64_t offset) override;
  Result<void*> Mmap(int device, uint64_t offset, size_t len,
                     int prot) override;
  void Munmap(void* addr, size_t len) override;
  uint64_t MemlockLimit() override { return memlock_limit; }

 private:
  struct FakeDevice {
    FakeDeviceSpec spec;
    int group = -1;
    std::map<uint32_t, std::vector<int32_t>> enabled;  // irq index -> eventfds
    int intx_unmask_fd = -1;
    bool intx_masked = false;
  };
  struct FakeGroup {
    bool viable = true;
    int fd = -1;         // open fd, -1 = closed
    int container = -1;  // container fd it is attached to
  };
  enum class Kind { kContainer, kGroup, kDevice };
  struct Fd {
    Kind kind;
    int group = -1;      // kGroup
    std::string device;  // kDevice
  };

  int TakeFailure(const std::string& op);
  tl::unexpected<Error> Fail(int err, const std::string& what);
  Result<FakeDevice*> DeviceFor(int fd, const std::string& op);
  Result<FakeRegion*> RegionAt(FakeDevice& dev, uint64_t offset, size_t len,
                               uint64_t* at);
  int NewFd(Fd fd);
  void Detach(int group_number);

  int next_fd_ = 100;
  std::map<int, Fd> fds_;
  std::map<int, FakeGroup> groups_;
  std::map<std::string, FakeDevice> devices_;
  std::map<std::string, std::pair<int, int>> failures_;  // op -> (errno, times)
  struct FakeContainer {
    uint32_t iommu_type = 0;  // 0 = SET_IOMMU not done
    int groups = 0;
  };
  std::map<int, FakeContainer> containers_;  // by fd
  uint32_t iommu_type_ = 0;                  // last type set
};

}  // namespace devpass::vfio
