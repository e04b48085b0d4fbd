#include "vmm/memslots.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

namespace devpass::vmm {

struct MemslotTable::State {
  std::mutex mu;
  KvmApi* kvm;
  int vm_fd;
  uint32_t slot_count;
  bool alive = true;
  std::map<uint32_t, Info> slots;  // by id

  std::optional<Info> OverlapLocked(uint64_t gpa, uint64_t end) const {
    for (const auto& [id, s] : slots) {
      if (gpa < s.end().value && s.gpa.value < end) return s;
    }
    return std::nullopt;
  }

  Status DeleteLocked(const Info& info) {
    kvm_userspace_memory_region r{};
    r.slot = info.slot;
    r.guest_phys_addr = info.gpa.value;
    r.userspace_addr = info.host;
    r.memory_size = 0;  // deletes the slot
    return kvm->SetUserMemoryRegion(vm_fd, r);
  }
};

MemslotTable::MemslotTable(KvmApi& kvm, int vm_fd, uint32_t slot_count)
    : state_(std::make_shared<State>()) {
  state_->kvm = &kvm;
  state_->vm_fd = vm_fd;
  state_->slot_count = slot_count;
}

MemslotTable::~MemslotTable() {
  std::lock_guard lock(state_->mu);
  for (auto it = state_->slots.rbegin(); it != state_->slots.rend(); ++it) {
    (void)state_->DeleteLocked(it->second);
  }
  state_->slots.clear();
  state_->alive = false;
}

Result<MemslotTable::Slot> MemslotTable::Map(Gpa gpa, uint64_t size, void* host,
                                             std::string name) {
  const uint64_t hva = reinterpret_cast<uint64_t>(host);
  if (size == 0 || gpa.value % kPageSize || size % kPageSize ||
      hva % kPageSize) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} at guest-physical {:#x}, {:#x} bytes from host "
                    "address {:#x}: KVM maps only whole {}-byte pages "
                    "(address, size and host address page aligned)",
                    name, gpa.value, size, hva, kPageSize));
  }
  const uint64_t end = gpa.value + size;
  if (end < gpa.value) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} at {:#x} with size {:#x} wraps around the "
                                 "address space",
                                 name, gpa.value, size));
  }
  State& s = *state_;
  std::lock_guard lock(s.mu);
  if (auto other = s.OverlapLocked(gpa.value, end)) {
    return MakeError(
        ErrorCode::kConflict,
        fmt::format("{} at {:#x}-{:#x} overlaps {} at {:#x}-{:#x} "
                    "(KVM memory slot {}); give one of them another "
                    "address",
                    name, gpa.value, end - 1, other->name, other->gpa.value,
                    other->end().value - 1, other->slot));
  }
  uint32_t id = 0;
  for (const auto& [used, info] : s.slots) {  // ordered: the first gap wins
    if (used != id) break;
    ++id;
  }
  if (id >= s.slot_count) {
    return MakeError(
        ErrorCode::kBusy,
        fmt::format("cannot map {}: all {} KVM memory slots are in "
                    "use",
                    name, s.slot_count));
  }
  kvm_userspace_memory_region r{};
  r.slot = id;
  r.guest_phys_addr = gpa.value;
  r.memory_size = size;
  r.userspace_addr = hva;
  if (Status st = s.kvm->SetUserMemoryRegion(s.vm_fd, r); !st) {
    Error e = st.error();
    e.message = fmt::format("cannot map {} at guest-physical {:#x}-{:#x}: {}",
                            name, gpa.value, end - 1, e.message);
    return tl::unexpected<Error>(std::move(e));
  }
  Info info{id, gpa, size, hva, std::move(name)};
  s.slots.emplace(id, info);
  Slot out;
  out.state_ = state_;
  out.info_ = std::move(info);
  return out;
}

MemslotTable::Slot& MemslotTable::Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    Reset();
    state_ = std::move(o.state_);
    info_ = std::move(o.info_);
  }
  return *this;
}

void MemslotTable::Slot::Reset() {
  if (!state_) return;
  std::shared_ptr<State> s = std::move(state_);
  std::lock_guard lock(s->mu);
  auto it = s->slots.find(info_.slot);
  if (!s->alive || it == s->slots.end()) return;
  // If KVM refused, the slot is still there: keep it in the table (its id
  // and range stay taken, as they are in KVM; the destructor tries again).
  if (s->DeleteLocked(it->second)) s->slots.erase(it);
}

std::optional<MemslotTable::Info> MemslotTable::FindOverlap(
    Gpa gpa, uint64_t size) const {
  if (size == 0) return std::nullopt;
  const uint64_t end =
      gpa.value + size < gpa.value ? ~uint64_t{0} : gpa.value + size;
  std::lock_guard lock(state_->mu);
  return state_->OverlapLocked(gpa.value, end);
}

std::vector<MemslotTable::Info> MemslotTable::List() const {
  std::lock_guard lock(state_->mu);
  std::vector<Info> out;
  for (const auto& [id, info] : state_->slots) out.push_back(info);
  return out;
}

}  // namespace devpass::vmm
