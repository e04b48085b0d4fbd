#include "vfio/dma.h"

#include <linux/vfio.h>

namespace devpass::vfio {

Result<DmaMapping> DmaMapping::Map(std::shared_ptr<IommuBackend> backend,
                                   void* vaddr, uint64_t iova, uint64_t size,
                                   Access access) {
  DmaMapArgs args;
  args.vaddr = reinterpret_cast<uintptr_t>(vaddr);
  args.iova = iova;
  args.size = size;
  if (access & kRead) args.flags |= VFIO_DMA_MAP_FLAG_READ;
  if (access & kWrite) args.flags |= VFIO_DMA_MAP_FLAG_WRITE;
  DP_RETURN_IF_ERROR(backend->MapDma(args));
  return DmaMapping(std::move(backend), iova, size);
}

DmaMapping::DmaMapping(DmaMapping&& other) noexcept
    : backend_(std::move(other.backend_)),
      iova_(other.iova_),
      size_(other.size_),
      epoch_(other.epoch_) {}

DmaMapping& DmaMapping::operator=(DmaMapping&& other) noexcept {
  if (this != &other) {
    Reset();
    backend_ = std::move(other.backend_);
    iova_ = other.iova_;
    size_ = other.size_;
    epoch_ = other.epoch_;
  }
  return *this;
}

Status DmaMapping::Unmap() {
  if (!backend_) return Ok();
  auto backend = std::move(backend_);
  backend_ = nullptr;
  // The kernel already dropped the mapping with the IOMMU it belonged to.
  if (backend->epoch() != epoch_) return Ok();
  return backend->UnmapDma(iova_, size_);
}

}  // namespace devpass::vfio
