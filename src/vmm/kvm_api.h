#pragma once

// The seam between the VMM and the kernel: every KVM ioctl devpass makes goes
// through KvmApi, so VM setup and the vCPU run loop can be unit tested
// against a fake (tests/unit/vmm/fake_kvm.h) on machines without /dev/kvm.
// The methods are thin: one ioctl each, errors carry errno.

#include <linux/kvm.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/fs.h"

namespace devpass::vmm {

// kvm_run, mapped from a vCPU fd; unmapped on destruction.
class RunMapping {
 public:
  using Unmapper = void (*)(void* addr, size_t size);
  RunMapping() = default;
  RunMapping(void* addr, size_t size, Unmapper unmap)
      : addr_(addr), size_(size), unmap_(unmap) {}
  ~RunMapping() { Reset(); }
  RunMapping(RunMapping&& o) noexcept { *this = std::move(o); }
  RunMapping& operator=(RunMapping&& o) noexcept {
    if (this != &o) {
      Reset();
      addr_ = std::exchange(o.addr_, nullptr);
      size_ = std::exchange(o.size_, 0);
      unmap_ = o.unmap_;
    }
    return *this;
  }
  kvm_run* run() const { return static_cast<kvm_run*>(addr_); }
  uint8_t* bytes() const { return static_cast<uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  void Reset() {
    if (addr_ && unmap_) unmap_(addr_, size_);
    addr_ = nullptr;
  }
  void* addr_ = nullptr;
  size_t size_ = 0;
  Unmapper unmap_ = nullptr;
};

struct Msr {
  uint32_t index = 0;
  uint64_t value = 0;
};

class KvmApi {
 public:
  virtual ~KvmApi() = default;

  // /dev/kvm (the caller gives the path, from Root).
  virtual Result<UniqueFd> OpenKvm(const std::filesystem::path& dev) = 0;
  virtual Result<int> ApiVersion(int kvm_fd) = 0;
  // KVM_CHECK_EXTENSION; 0 means absent.
  virtual Result<int> CheckExtension(int fd, int capability) = 0;
  virtual Result<int> VcpuMmapSize(int kvm_fd) = 0;
  virtual Result<std::vector<kvm_cpuid_entry2>> SupportedCpuid(int kvm_fd) = 0;

  virtual Result<UniqueFd> CreateVm(int kvm_fd) = 0;
  virtual Status SetTssAddr(int vm_fd, uint64_t addr) = 0;
  virtual Status SetIdentityMapAddr(int vm_fd, uint64_t addr) = 0;
  virtual Status CreateIrqchip(int vm_fd) = 0;
  virtual Status CreatePit2(int vm_fd) = 0;
  virtual Status SetUserMemoryRegion(int vm_fd,
                                     const kvm_userspace_memory_region& r) = 0;
  virtual Status IrqLine(int vm_fd, uint32_t irq, bool level) = 0;

  // ---- device assignment (Documentation/virt/kvm/api.rst).
  // KVM_SET_GSI_ROUTING: replaces the VM's whole GSI routing table with
  // `entries` (the kernel's default ISA/IOAPIC entries included: they are
  // not kept implicitly once userspace sets a table).
  virtual Status SetGsiRouting(
      int vm_fd, const std::vector<kvm_irq_routing_entry>& entries) = 0;
  // KVM_IRQFD: assign (flags 0 or KVM_IRQFD_FLAG_RESAMPLE with resamplefd)
  // or deassign (KVM_IRQFD_FLAG_DEASSIGN) an eventfd -> GSI binding.
  virtual Status Irqfd(int vm_fd, const kvm_irqfd& irqfd) = 0;
  // KVM_CREATE_DEVICE of `type` (e.g. KVM_DEV_TYPE_VFIO); the device fd.
  virtual Result<UniqueFd> CreateDevice(int vm_fd, uint32_t type) = 0;
  // KVM_SET_DEVICE_ATTR on a device fd from CreateDevice.
  virtual Status SetDeviceAttr(int device_fd, const kvm_device_attr& attr) = 0;

  virtual Result<UniqueFd> CreateVcpu(int vm_fd, int id) = 0;
  virtual Result<RunMapping> MapRun(int vcpu_fd, size_t size) = 0;
  virtual Status SetCpuid(int vcpu_fd,
                          const std::vector<kvm_cpuid_entry2>& entries) = 0;
  virtual Result<kvm_sregs> GetSregs(int vcpu_fd) = 0;
  virtual Status SetSregs(int vcpu_fd, const kvm_sregs& s) = 0;
  virtual Result<kvm_regs> GetRegs(int vcpu_fd) = 0;
  virtual Status SetRegs(int vcpu_fd, const kvm_regs& r) = 0;
  virtual Status SetFpu(int vcpu_fd, const kvm_fpu& f) = 0;
  virtual Status SetMsrs(int vcpu_fd, const std::vector<Msr>& msrs) = 0;
  virtual Result<kvm_lapic_state> GetLapic(int vcpu_fd) = 0;
  virtual Status SetLapic(int vcpu_fd, const kvm_lapic_state& s) = 0;
  // KVM_RUN. EINTR (a kick from another thread) comes back as an Error with
  // sys_errno EINTR; the caller decides.
  virtual Status Run(int vcpu_fd) = 0;
  // KVM_NMI: queues an NMI for the vCPU (from its own thread: vCPU ioctls
  // wait for a running KVM_RUN to return).
  virtual Status Nmi(int vcpu_fd) = 0;
};

// The real thing: ioctls on the kernel's /dev/kvm.
std::unique_ptr<KvmApi> NewSystemKvmApi();

}  // namespace devpass::vmm
