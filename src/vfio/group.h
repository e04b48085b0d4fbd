#pragma once

// A VFIO group: /dev/vfio/N, the unit of isolation the IOMMU can tell apart.
// The kernel lets one process open a group once, so every device of the
// group shares one Group (the Container keeps the registry, keyed by N).
// Closing: VFIO_GROUP_UNSET_CONTAINER, then close(2); the Group keeps its
// Container alive so the container fd is always closed after it.

#include <memory>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/root.h"
#include "vfio/handles.h"
#include "vfio/iommu_backend.h"

namespace devpass::vfio {

class Container;

class Group {
 public:
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int number() const { return number_; }
  int fd() const { return fd_.get(); }
  // From /sys/kernel/iommu_groups/N/reserved_regions; IOVAs the device must
  // not be given (the MSI doorbell window, RMRRs).
  const std::vector<ReservedRegion>& reserved_regions() const {
    return reserved_;
  }
  Container& container() const { return *container_; }

 private:
  friend class Container;
  Group(std::shared_ptr<Container> container, VfioFd fd, int number,
        std::vector<ReservedRegion> reserved)
      : container_(std::move(container)),
        fd_(std::move(fd)),
        number_(number),
        reserved_(std::move(reserved)) {}

  std::shared_ptr<Container> container_;
  VfioFd fd_;
  int number_;
  std::vector<ReservedRegion> reserved_;
};

// Parses the reserved_regions format; malformed lines are skipped.
std::vector<ReservedRegion> ParseReservedRegions(std::string_view text);
// Reads <root>/sys/kernel/iommu_groups/N/reserved_regions (empty if absent).
std::vector<ReservedRegion> ReadReservedRegions(const Root& root, int group);

}  // namespace devpass::vfio
