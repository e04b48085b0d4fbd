#pragma once

// The VM's KVM memory slots: guest RAM at start-up, device memory (a VFIO
// BAR mmap) at run time. KVM_SET_USER_MEMORY_REGION may be called while
// vCPUs run: KVM installs the new slot set under SRCU and a vCPU faulting
// on the range afterwards sees it.
//
// The table allocates slot ids (the lowest free one below
// KVM_CAP_NR_MEMSLOTS) and refuses what the kernel would refuse, earlier and
// with names: unaligned ranges, and a range that overlaps another slot (the
// kernel says EEXIST without saying which).
//
// Lifetime: the table is owned by the Vm and destroyed before guest RAM is
// unmapped and the VM fd closed; it deletes every slot still present. A Slot
// handle may outlive it and then does nothing. Thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "vmm/kvm_api.h"
#include "vmm/layout.h"

namespace devpass::vmm {

class MemslotTable {
  struct State;

 public:
  // `slot_count`: KVM_CHECK_EXTENSION(KVM_CAP_NR_MEMSLOTS).
  MemslotTable(KvmApi& kvm, int vm_fd, uint32_t slot_count);
  ~MemslotTable();
  MemslotTable(const MemslotTable&) = delete;
  MemslotTable& operator=(const MemslotTable&) = delete;

  struct Info {
    uint32_t slot = 0;
    Gpa gpa;
    uint64_t size = 0;
    uint64_t host = 0;  // userspace address
    std::string name;
    Gpa end() const { return gpa + size; }
  };

  // An owned slot: deleted (memory_size 0) on destruction.
  class Slot {
   public:
    Slot() = default;
    ~Slot() { Reset(); }
    Slot(Slot&& o) noexcept { *this = std::move(o); }
    Slot& operator=(Slot&& o) noexcept;
    const Info& info() const { return info_; }
    bool valid() const { return state_ != nullptr; }
    void Reset();

   private:
    friend class MemslotTable;
    std::shared_ptr<State> state_;
    Info info_;
  };

  // Maps host [host, host + size) at guest-physical `gpa`. gpa, size and
  // host must be page aligned (kInvalidArgument); kConflict when the range
  // overlaps another slot (named); kBusy when every slot id is taken.
  Result<Slot> Map(Gpa gpa, uint64_t size, void* host, std::string name);

  // The first slot overlapping [gpa, gpa + size), if any.
  std::optional<Info> FindOverlap(Gpa gpa, uint64_t size) const;
  std::vector<Info> List() const;  // by slot id

 private:
  std::shared_ptr<State> state_;
};

}  // namespace devpass::vmm
