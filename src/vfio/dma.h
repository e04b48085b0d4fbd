#pragma once

// DmaMapping: process memory made visible to devices at an IOVA for as long as
// the object lives (VFIO_IOMMU_MAP_DMA / UNMAP_DMA on type1). It keeps its
// IommuBackend alive, so the container fd is closed only after the unmap.

#include <cstdint>
#include <memory>

#include "base/error.h"
#include "vfio/iommu_backend.h"

namespace devpass::vfio {

class DmaMapping {
 public:
  enum Access : uint32_t {
    kRead = 1,
    kWrite = 2,
    kReadWrite = 3
  };  // device's view

  // Maps `size` bytes at `vaddr` (page aligned) to `iova`. Fails with a
  // message naming the rule broken: outside the IOMMU's IOVA ranges, inside
  // a group's reserved region (e.g. the x86 MSI window), RLIMIT_MEMLOCK too
  // low, overlapping an existing mapping.
  static Result<DmaMapping> Map(std::shared_ptr<IommuBackend> backend,
                                void* vaddr, uint64_t iova, uint64_t size,
                                Access access = kReadWrite);

  DmaMapping() = default;
  ~DmaMapping() { Reset(); }
  DmaMapping(DmaMapping&& other) noexcept;
  DmaMapping& operator=(DmaMapping&& other) noexcept;
  DmaMapping(const DmaMapping&) = delete;
  DmaMapping& operator=(const DmaMapping&) = delete;

  uint64_t iova() const { return iova_; }
  uint64_t size() const { return size_; }
  bool mapped() const { return backend_ != nullptr; }

  // Unmaps now (also what the destructor does); reports a kernel refusal.
  Status Unmap();
  void Reset() { (void)Unmap(); }

 private:
  DmaMapping(std::shared_ptr<IommuBackend> backend, uint64_t iova,
             uint64_t size)
      : backend_(std::move(backend)),
        iova_(iova),
        size_(size),
        epoch_(backend_->epoch()) {}

  std::shared_ptr<IommuBackend> backend_;
  uint64_t iova_ = 0;
  uint64_t size_ = 0;
  uint64_t epoch_ = 0;
};

}  // namespace devpass::vfio
