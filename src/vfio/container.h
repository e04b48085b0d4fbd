#pragma once

// The VFIO type1 container: /dev/vfio/vfio, one IOMMU context shared by any
// number of groups. Setup order (the kernel enforces most of it):
//   open /dev/vfio/vfio -> VFIO_GET_API_VERSION == VFIO_API_VERSION ->
//   VFIO_CHECK_EXTENSION(TYPE1v2, else TYPE1) -> per group: open /dev/vfio/N,
//   VFIO_GROUP_GET_STATUS viable, VFIO_GROUP_SET_CONTAINER -> after the first
//   group only: VFIO_SET_IOMMU -> VFIO_IOMMU_GET_INFO -> MAP_DMA ->
//   VFIO_GROUP_GET_DEVICE_FD.
// Teardown is the reverse and follows from ownership: DmaMapping and Group
// hold the Container, Device holds its Group, so the container fd closes last.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"
#include "vfio/device.h"
#include "vfio/group.h"
#include "vfio/handles.h"
#include "vfio/iommu_backend.h"
#include "vfio/vfio_api.h"

namespace devpass::vfio {

class Container final : public IommuBackend,
                        public std::enable_shared_from_this<Container> {
 public:
  // Opens root.Dev("vfio/vfio") and checks the API version and type1 support.
  static Result<std::shared_ptr<Container>> Open(std::shared_ptr<VfioApi> api,
                                                 Root root);
  ~Container() override;
  Container(const Container&) = delete;
  Container& operator=(const Container&) = delete;

  // IommuBackend.
  std::string name() const override;
  // Checks the device is bound to vfio-pci and sits in an IOMMU group, then
  // attaches its group (shared with earlier devices of the same group) and
  // gets the device fd.
  Result<Device> OpenDevice(const PciAddress& address) override;
  Status MapDma(const DmaMapArgs& args) override;
  Status UnmapDma(uint64_t iova, uint64_t size) override;
  const IommuInfo& iommu_info() const override { return info_; }
  std::vector<ReservedRegion> reserved_regions() const override;
  uint64_t epoch() const override { return epoch_; }

  // Group N, opened and attached on first use and shared afterwards. The
  // first group also sets the IOMMU type; every attach refreshes the IOMMU
  // info (a new group can shrink the usable IOVA ranges).
  Result<std::shared_ptr<Group>> AttachGroup(int number);

  // VFIO_TYPE1v2_IOMMU, or VFIO_TYPE1_IOMMU on kernels without v2.
  uint32_t iommu_type() const { return iommu_type_; }
  bool iommu_set() const { return iommu_set_; }
  // Extensions VFIO_CHECK_EXTENSION reported (TYPE1, TYPE1v2, DMA_CC,
  // NOIOMMU, UNMAP_ALL, UPDATE_VADDR), as names for display.
  const std::vector<std::string>& extensions() const { return extensions_; }
  // Bytes currently mapped (pinned and charged to RLIMIT_MEMLOCK).
  uint64_t mapped_bytes() const;
  int fd() const { return fd_.get(); }
  const Root& root() const { return root_; }
  VfioApi& api() const { return *api_; }

 private:
  friend class Group;
  Container(std::shared_ptr<VfioApi> api, Root root, VfioFd fd)
      : api_(std::move(api)), root_(std::move(root)), fd_(std::move(fd)) {}

  Result<std::shared_ptr<Group>> OpenGroup(int number);
  void OnGroupClosed(int number);
  Status CheckRange(const DmaMapArgs& args) const;
  Error ExplainMapError(const Error& e, const DmaMapArgs& args);

  std::shared_ptr<VfioApi> api_;
  Root root_;
  VfioFd fd_;
  uint32_t iommu_type_ = 0;
  bool iommu_set_ = false;
  uint64_t epoch_ = 0;
  IommuInfo info_;
  std::vector<std::string> extensions_;
  std::map<int, std::weak_ptr<Group>> groups_;  // by group number
  std::map<uint64_t, uint64_t> mapped_;         // iova -> size
};

// The checks that need no VFIO: the device exists, is bound to vfio-pci (or a
// vfio-pci variant driver) and has an IOMMU group. Returns the group number.
Result<int> CheckDeviceIsHidden(const Root& root, const PciAddress& address);

// A device opened through its own fresh container. Members are destroyed in
// reverse order: the device first, the container last.
struct VfioSession {
  std::shared_ptr<Container> container;
  Device device;
};

// CheckDeviceIsHidden, then Container::Open, then OpenDevice, so a device
// that is not hidden gets "run `devpass hide`" rather than a VFIO error.
Result<VfioSession> OpenVfioDevice(std::shared_ptr<VfioApi> api,
                                   const Root& root, const PciAddress& address);

}  // namespace devpass::vfio
