#include "vmm/kvm_vfio.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/kvm.h>

#include <cerrno>
#include <mutex>
#include <set>

namespace devpass::vmm {
namespace {

Status SetGroupAttr(KvmApi& kvm, int device_fd, uint64_t attr, int group_fd) {
  int32_t fd = group_fd;  // attr.addr points at an int32 (vfio.rst)
  kvm_device_attr a{};
  a.group = KVM_DEV_VFIO_GROUP;
  a.attr = attr;
  a.addr = reinterpret_cast<uint64_t>(&fd);
  return kvm.SetDeviceAttr(device_fd, a);
}

}  // namespace

struct KvmVfioDevice::State {
  std::mutex mu;
  KvmApi* kvm;
  UniqueFd device;
  std::set<int> groups;  // our dups of the group fds, added now
};

class KvmVfioDevice::Group : public pci::Registration {
 public:
  Group(std::shared_ptr<State> state, UniqueFd fd)
      : state_(std::move(state)), fd_(std::move(fd)) {}
  ~Group() override {
    State& s = *state_;
    std::lock_guard lock(s.mu);
    if (!s.device.valid() || !s.groups.count(fd_.get())) return;  // device gone
    (void)SetGroupAttr(*s.kvm, s.device.get(), KVM_DEV_VFIO_GROUP_DEL,
                       fd_.get());
    s.groups.erase(fd_.get());
  }

 private:
  std::shared_ptr<State> state_;
  UniqueFd fd_;  // our dup of the group fd
};

Result<std::unique_ptr<KvmVfioDevice>> KvmVfioDevice::Create(KvmApi& kvm,
                                                             int vm_fd) {
  auto state = std::make_shared<State>();
  state->kvm = &kvm;
  auto fd = kvm.CreateDevice(vm_fd, KVM_DEV_TYPE_VFIO);
  if (!fd) {
    Error e = fd.error();
    e.message = fmt::format(
        "cannot create the KVM-VFIO device (KVM_CREATE_DEVICE "
        "KVM_DEV_TYPE_VFIO; the host kernel needs "
        "CONFIG_KVM_VFIO): {}",
        e.message);
    return tl::unexpected<Error>(std::move(e));
  }
  state->device = std::move(*fd);
  return std::unique_ptr<KvmVfioDevice>(new KvmVfioDevice(std::move(state)));
}

KvmVfioDevice::~KvmVfioDevice() {
  std::lock_guard lock(state_->mu);
  for (int fd : state_->groups) {
    (void)SetGroupAttr(*state_->kvm, state_->device.get(),
                       KVM_DEV_VFIO_GROUP_DEL, fd);
  }
  state_->groups.clear();
  state_->device.Reset();  // registrations still out see an invalid fd
}

Result<pci::RegistrationPtr> KvmVfioDevice::AddGroup(int group_fd) {
  State& s = *state_;
  int dup = ::fcntl(group_fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) {
    return ErrnoError(errno,
                      fmt::format("VFIO group fd {} is not open", group_fd));
  }
  UniqueFd keep(dup);
  std::lock_guard lock(s.mu);
  if (!s.device.valid()) {
    return MakeError(ErrorCode::kConflict, "the VM's KVM-VFIO device is gone");
  }
  if (Status st =
          SetGroupAttr(*s.kvm, s.device.get(), KVM_DEV_VFIO_GROUP_ADD, dup);
      !st) {
    Error e = st.error();
    e.message = fmt::format(
        "cannot add VFIO group fd {} to the VM's KVM-VFIO "
        "device: {}",
        group_fd, e.message);
    return tl::unexpected<Error>(std::move(e));
  }
  s.groups.insert(dup);
  return std::make_unique<Group>(state_, std::move(keep));
}

size_t KvmVfioDevice::group_count() const {
  std::lock_guard lock(state_->mu);
  return state_->groups.size();
}

}  // namespace devpass::vmm
