#pragma once

// The KVM-VFIO pseudo device (Documentation/virt/kvm/devices/vfio.rst):
// tells KVM which VFIO groups the VM's devices come from. KVM uses it to
// learn that the VM does non-coherent DMA (an IOMMU that does not enforce
// snooping: KVM then honours the guest's WBINVD and memory types) and to
// hand the kvm pointer to drivers that want it (mediated devices).
//
// One per VM (the kernel refuses a second one with EBUSY), created on first
// use by the Vm. Each added group is an owned Registration: dropping it
// deletes the group again (KVM_DEV_VFIO_GROUP_DEL). A group is added with a
// dup of the caller's fd, so the delete reaches the same file even if the
// caller's fd number was closed and reused meanwhile.
//
// Lifetime: destroyed before the VM fd closes, deleting the groups still
// added; registrations that outlive it then do nothing. Thread-safe.

#include <memory>

#include "base/error.h"
#include "base/fs.h"
#include "pci/guest_platform.h"
#include "vmm/kvm_api.h"

namespace devpass::vmm {

class KvmVfioDevice {
  struct State;
  class Group;

 public:
  static Result<std::unique_ptr<KvmVfioDevice>> Create(KvmApi& kvm, int vm_fd);
  ~KvmVfioDevice();
  KvmVfioDevice(const KvmVfioDevice&) = delete;
  KvmVfioDevice& operator=(const KvmVfioDevice&) = delete;

  // KVM_DEV_VFIO_GROUP_ADD of the VFIO group behind `group_fd`.
  Result<pci::RegistrationPtr> AddGroup(int group_fd);
  size_t group_count() const;

 private:
  explicit KvmVfioDevice(std::shared_ptr<State> state)
      : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace devpass::vmm
