#pragma once

// A KvmApi without a kernel: records every call, hands out fake fds, keeps
// vCPU state, and plays a script of exits to vCPU 0's KVM_RUN. Other vCPUs
// (the APs, waiting for SIPI on a real host) block until kicked.
//
// It also enforces the kernel's rules that devpass could get wrong
// (virt/kvm/kvm_main.c, virt/kvm/eventfd.c, virt/kvm/irqchip.c,
// arch/x86/kvm/irq_comm.c, virt/kvm/vfio.c), with the kernel's errno:
//   memslots: slot id below KVM_CAP_NR_MEMSLOTS and address space 0, page
//     alignment, no wrap (EINVAL); a new slot overlapping another (EEXIST);
//     resizing a live slot or deleting an absent one (EINVAL);
//   GSI routing: an irqchip first, at most 4096 entries and GSIs, valid chip
//     pins, a GSI on one chip at most once and an MSI GSI on nothing else
//     (EINVAL);
//   irqfd: an irqchip, an eventfd bound once per VM (EBUSY); stricter than
//     the kernel, so that devpass bugs show up (the lab's 6.1 accepts both
//     silently): resample only on a GSI routed to an irqchip (EINVAL; the
//     kernel binds it but no EOI ever resamples it), and deassigning a
//     binding that does not exist is ENOENT (the kernel returns 0);
//   KVM-VFIO: one per VM (EBUSY), group add twice (EEXIST), delete unknown
//     (ENOENT), other groups/attributes (ENXIO);
//   every VM ioctl on a VM fd that is still open: a call after the VM fd was
//     closed (teardown out of order) is counted in calls_on_closed_vm_fd.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vmm/kvm_api.h"

namespace devpass::vmm::testing {

class FakeKvm : public KvmApi {
 public:
  // An exit to play: fills kvm_run (and returns errno if non-zero).
  using Step = std::function<void(kvm_run*)>;

  std::vector<std::string> calls;
  std::deque<Step> script;  // vCPU 0
  std::map<int, kvm_sregs> sregs;
  std::map<int, kvm_regs> regs;
  std::map<int, std::vector<kvm_cpuid_entry2>> cpuid;
  std::vector<kvm_userspace_memory_region> regions;  // every call, in order
  std::vector<std::pair<uint32_t, bool>> irq_lines;
  int open_errno = 0;  // OpenKvm fails with this
  int api_version = 12;
  std::map<int, int>
      caps;  // capability -> value (default 1; see CheckExtension)
  int vcpu_index_of_fd(int fd) const { return fd - 100; }

  // ---- memslots, routing, irqfds, devices (guarded by mu_; read them when
  // no other thread is calling in).
  std::map<uint32_t, kvm_userspace_memory_region> slots;  // live slots by id
  bool irqchip = false;
  bool routing_set = false;  // false: the kernel's default table applies
  std::vector<kvm_irq_routing_entry> routing;  // the last table set
  int routing_sets = 0;
  struct IrqfdCall {
    bool assign = true;
    int fd = -1;
    uint32_t gsi = 0;
    int resamplefd = -1;  // -1: no KVM_IRQFD_FLAG_RESAMPLE
  };
  std::vector<IrqfdCall> irqfd_calls;  // every call, in order
  std::vector<IrqfdCall> irqfds;       // bound now
  std::map<int, uint32_t> devices;     // device fd -> type
  // Files added to the KVM-VFIO device, by identity (st_dev, st_ino): the
  // kernel compares struct file, so two fds of one file are one group.
  std::vector<std::pair<dev_t, ino_t>> vfio_groups;
  int vm_fd = -1;
  int calls_on_closed_vm_fd = 0;
  // Fail the next call of these with this errno (then reset to 0).
  int fail_routing_errno = 0;
  int fail_irqfd_errno = 0;
  int fail_memslot_errno = 0;

  Result<UniqueFd> OpenKvm(const std::filesystem::path&) override {
    Log("OpenKvm");
    if (open_errno) return ErrnoError(open_errno, "fake open failed");
    return UniqueFd(Dup());
  }
  Result<int> ApiVersion(int) override { return api_version; }
  Result<int> CheckExtension(int, int cap) override {
    auto it = caps.find(cap);
    if (it != caps.end()) return it->second;
    switch (cap) {
      case KVM_CAP_MAX_VCPUS:
        return 64;
      case KVM_CAP_NR_MEMSLOTS:
        return 509;  // KVM_USER_MEM_SLOTS before 5.x
      case KVM_CAP_IRQ_ROUTING:
        return 4096;  // KVM_MAX_IRQ_ROUTES
      default:
        return 1;
    }
  }
  Result<int> VcpuMmapSize(int) override { return 8192; }
  Result<std::vector<kvm_cpuid_entry2>> SupportedCpuid(int) override {
    std::vector<kvm_cpuid_entry2> e(3);
    e[0].function = 0;
    e[0].eax = 0xd;
    e[1].function = 1;
    e[1].ebx = 0x00010800;
    e[2].function = 0x40000000;
    return e;
  }
  Result<UniqueFd> CreateVm(int) override {
    Log("CreateVm");
    int fd = Dup();
    std::lock_guard lock(mu_);
    vm_fd = fd;
    return UniqueFd(fd);
  }
  Status SetTssAddr(int, uint64_t a) override {
    return Log("SetTssAddr " + Hex(a));
  }
  Status SetIdentityMapAddr(int, uint64_t a) override {
    return Log("SetIdentityMapAddr " + Hex(a));
  }
  Status CreateIrqchip(int fd) override {
    std::lock_guard lock(mu_);
    CheckVmFd(fd);
    irqchip = true;
    calls.push_back("CreateIrqchip");
    return Ok();
  }
  Status CreatePit2(int) override { return Log("CreatePit2"); }
  Status SetUserMemoryRegion(int fd,
                             const kvm_userspace_memory_region& r) override {
    std::lock_guard lock(mu_);
    CheckVmFd(fd);
    regions.push_back(r);
    calls.push_back("SetUserMemoryRegion " + std::to_string(r.slot) + " " +
                    Hex(r.guest_phys_addr) + " " + Hex(r.memory_size));
    if (int e = std::exchange(fail_memslot_errno, 0))
      return Errno(e, "memslot");
    const uint32_t id = r.slot & 0xffff;
    const uint64_t page = 4096;
    if ((r.slot >> 16) != 0 ||
        static_cast<int>(id) >= CapLocked(KVM_CAP_NR_MEMSLOTS) ||
        r.guest_phys_addr % page || r.memory_size % page ||
        r.userspace_addr % page ||
        r.guest_phys_addr + r.memory_size < r.guest_phys_addr) {
      return Errno(EINVAL, "KVM_SET_USER_MEMORY_REGION");
    }
    auto it = slots.find(id);
    if (r.memory_size == 0) {
      if (it == slots.end()) return Errno(EINVAL, "delete of an absent slot");
      slots.erase(it);
      return Ok();
    }
    if (it != slots.end() && it->second.memory_size != r.memory_size) {
      return Errno(EINVAL, "resize of a live slot");
    }
    for (const auto& [other_id, o] : slots) {
      if (other_id == id) continue;
      if (r.guest_phys_addr < o.guest_phys_addr + o.memory_size &&
          o.guest_phys_addr < r.guest_phys_addr + r.memory_size) {
        return Errno(EEXIST, "overlapping memslot");
      }
    }
    slots[id] = r;
    return Ok();
  }
  Status IrqLine(int, uint32_t irq, bool level) override {
    std::lock_guard lock(mu_);
    irq_lines.push_back({irq, level});
    return Ok();
  }
  Status SetGsiRouting(int fd,
                       const std::vector<kvm_irq_routing_entry>& e) override {
    std::lock_guard lock(mu_);
    CheckVmFd(fd);
    calls.push_back("SetGsiRouting " + std::to_string(e.size()));
    if (int err = std::exchange(fail_routing_errno, 0))
      return Errno(err, "routing");
    constexpr uint32_t kMaxRoutes = 4096;  // KVM_MAX_IRQ_ROUTES
    if (!irqchip || e.size() > kMaxRoutes)
      return Errno(EINVAL, "KVM_SET_GSI_ROUTING");
    for (size_t i = 0; i < e.size(); ++i) {
      const kvm_irq_routing_entry& x = e[i];
      if (x.gsi >= kMaxRoutes || x.flags != 0) return Errno(EINVAL, "entry");
      if (x.type == KVM_IRQ_ROUTING_IRQCHIP) {
        const uint32_t chip = x.u.irqchip.irqchip, pin = x.u.irqchip.pin;
        const bool pic =
            chip == KVM_IRQCHIP_PIC_MASTER || chip == KVM_IRQCHIP_PIC_SLAVE;
        if (!(pic && pin < 8) && !(chip == KVM_IRQCHIP_IOAPIC && pin < 24)) {
          return Errno(EINVAL, "irqchip pin");
        }
      } else if (x.type != KVM_IRQ_ROUTING_MSI) {
        return Errno(EINVAL, "route type");
      }
      // setup_routing_entry(): a GSI maps to each irqchip at most once, and
      // a non-irqchip route shares its GSI with nothing.
      for (size_t j = 0; j < i; ++j) {
        const kvm_irq_routing_entry& y = e[j];
        if (y.gsi != x.gsi) continue;
        if (x.type != KVM_IRQ_ROUTING_IRQCHIP ||
            y.type != KVM_IRQ_ROUTING_IRQCHIP ||
            x.u.irqchip.irqchip == y.u.irqchip.irqchip) {
          return Errno(EINVAL, "duplicate GSI");
        }
      }
    }
    routing = e;
    routing_set = true;
    ++routing_sets;
    return Ok();
  }
  Status Irqfd(int fd, const kvm_irqfd& a) override {
    std::lock_guard lock(mu_);
    CheckVmFd(fd);
    const bool assign = !(a.flags & KVM_IRQFD_FLAG_DEASSIGN);
    const bool resample = a.flags & KVM_IRQFD_FLAG_RESAMPLE;
    IrqfdCall call{assign, static_cast<int>(a.fd), a.gsi,
                   resample ? static_cast<int>(a.resamplefd) : -1};
    irqfd_calls.push_back(call);
    calls.push_back(std::string("Irqfd ") + (assign ? "assign " : "deassign ") +
                    std::to_string(a.gsi) + (resample ? " resample" : ""));
    if (int err = std::exchange(fail_irqfd_errno, 0))
      return Errno(err, "irqfd");
    if (a.flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE)) {
      return Errno(EINVAL, "KVM_IRQFD flags");
    }
    if (!assign) {
      auto it =
          std::find_if(irqfds.begin(), irqfds.end(), [&](const IrqfdCall& b) {
            return b.fd == call.fd && b.gsi == call.gsi;
          });
      if (it == irqfds.end())
        return Errno(ENOENT, "deassign of an unknown irqfd");
      irqfds.erase(it);
      return Ok();
    }
    if (!irqchip) return Errno(EINVAL, "irqfd without an irqchip");
    for (const IrqfdCall& b : irqfds) {
      if (b.fd == call.fd) return Errno(EBUSY, "eventfd already bound");
    }
    if (resample && !IsIrqchipGsiLocked(a.gsi)) {
      return Errno(EINVAL, "resample on a GSI without an irqchip route");
    }
    irqfds.push_back(call);
    return Ok();
  }
  Result<UniqueFd> CreateDevice(int fd, uint32_t type) override {
    std::lock_guard lock(mu_);
    CheckVmFd(fd);
    calls.push_back("CreateDevice " + std::to_string(type));
    if (type != KVM_DEV_TYPE_VFIO) return Errno(ENODEV, "KVM_CREATE_DEVICE");
    for (const auto& [dfd, t] : devices) {
      if (t == KVM_DEV_TYPE_VFIO)
        return Errno(EBUSY, "one KVM-VFIO device per VM");
    }
    int dfd = Dup();
    devices[dfd] = type;
    return UniqueFd(dfd);
  }
  Status SetDeviceAttr(int dfd, const kvm_device_attr& attr) override {
    std::lock_guard lock(mu_);
    if (!devices.count(dfd) || ::fcntl(dfd, F_GETFD) < 0)
      return Errno(EBADF, "device fd");
    if (attr.group != KVM_DEV_VFIO_GROUP ||
        (attr.attr != KVM_DEV_VFIO_GROUP_ADD &&
         attr.attr != KVM_DEV_VFIO_GROUP_DEL)) {
      return Errno(ENXIO, "KVM_SET_DEVICE_ATTR");
    }
    int32_t group;
    std::memcpy(&group, reinterpret_cast<const void*>(attr.addr),
                sizeof(group));
    calls.push_back(std::string("SetDeviceAttr ") +
                    (attr.attr == KVM_DEV_VFIO_GROUP_ADD ? "add " : "del ") +
                    std::to_string(group));
    struct stat st;
    if (group < 0 || ::fstat(group, &st) < 0) return Errno(EBADF, "group fd");
    auto it = std::find(vfio_groups.begin(), vfio_groups.end(),
                        std::pair{st.st_dev, st.st_ino});
    if (attr.attr == KVM_DEV_VFIO_GROUP_ADD) {
      if (it != vfio_groups.end()) return Errno(EEXIST, "group already added");
      vfio_groups.push_back({st.st_dev, st.st_ino});
    } else {
      if (it == vfio_groups.end()) return Errno(ENOENT, "group not added");
      vfio_groups.erase(it);
    }
    return Ok();
  }
  // True when `gsi` reaches the PIC or IOAPIC in the table in force.
  bool IsIrqchipGsi(uint32_t gsi) {
    std::lock_guard lock(mu_);
    return IsIrqchipGsiLocked(gsi);
  }

  Result<UniqueFd> CreateVcpu(int, int id) override {
    Log("CreateVcpu " + std::to_string(id));
    // Keep a real fd (closed by UniqueFd) and remember its index.
    int fd = Dup();
    std::lock_guard lock(mu_);
    index_of_[fd] = id;
    return UniqueFd(fd);
  }
  Result<RunMapping> MapRun(int fd, size_t size) override {
    void* p = std::aligned_alloc(4096, size);
    std::memset(p, 0, size);
    std::lock_guard lock(mu_);
    runs_[fd] = static_cast<kvm_run*>(p);
    return RunMapping(p, size, [](void* a, size_t) { std::free(a); });
  }
  Status SetCpuid(int fd, const std::vector<kvm_cpuid_entry2>& e) override {
    std::lock_guard lock(mu_);
    cpuid[index_of_[fd]] = e;
    return Ok();
  }
  Result<kvm_sregs> GetSregs(int fd) override {
    std::lock_guard lock(mu_);
    return sregs[index_of_[fd]];
  }
  Status SetSregs(int fd, const kvm_sregs& s) override {
    std::lock_guard lock(mu_);
    sregs[index_of_[fd]] = s;
    return Ok();
  }
  Result<kvm_regs> GetRegs(int fd) override {
    std::lock_guard lock(mu_);
    return regs[index_of_[fd]];
  }
  Status SetRegs(int fd, const kvm_regs& r) override {
    std::lock_guard lock(mu_);
    regs[index_of_[fd]] = r;
    return Ok();
  }
  Status SetFpu(int, const kvm_fpu&) override { return Log("SetFpu"); }
  Status SetMsrs(int, const std::vector<Msr>&) override {
    return Log("SetMsrs");
  }
  Result<kvm_lapic_state> GetLapic(int) override { return kvm_lapic_state{}; }
  Status SetLapic(int, const kvm_lapic_state&) override { return Ok(); }

  // Calls recorded so far that start with `prefix` (thread-safe, for tests
  // that look while vCPU threads run).
  size_t CallsStartingWith(const std::string& prefix) {
    std::lock_guard lock(mu_);
    return static_cast<size_t>(std::count_if(
        calls.begin(), calls.end(),
        [&](const std::string& c) { return c.rfind(prefix, 0) == 0; }));
  }

  // Recorded as "Nmi vcpu N"; the kernel's KVM_NMI cannot fail on a vCPU
  // with an in-kernel LAPIC.
  Status Nmi(int fd) override {
    std::lock_guard lock(mu_);
    calls.push_back("Nmi vcpu " + std::to_string(index_of_[fd]));
    return Ok();
  }

  Status Run(int fd) override {
    kvm_run* run;
    int index;
    {
      std::lock_guard lock(mu_);
      run = runs_[fd];
      index = index_of_[fd];
    }
    for (;;) {
      if (run->immediate_exit) return ErrnoError(EINTR, "KVM_RUN interrupted");
      if (index == 0) {
        std::lock_guard lock(mu_);
        if (!script.empty()) {
          Step step = std::move(script.front());
          script.pop_front();
          step(run);
          return Ok();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

 private:
  static std::string Hex(uint64_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "%#llx", static_cast<unsigned long long>(v));
    return b;
  }
  Status Log(std::string s) {
    std::lock_guard lock(mu_);
    calls.push_back(std::move(s));
    return Ok();
  }
  static int Dup() { return ::fcntl(2, F_DUPFD_CLOEXEC, 3); }
  static tl::unexpected<Error> Errno(int err, const char* what) {
    return ErrnoError(
        err, std::string("fake KVM: ") + what + ": " + std::strerror(err));
  }
  int CapLocked(int cap) {
    auto it = caps.find(cap);
    if (it != caps.end()) return it->second;
    return cap == KVM_CAP_NR_MEMSLOTS ? 509 : 1;
  }
  void CheckVmFd(int fd) {
    if (fd != vm_fd || ::fcntl(fd, F_GETFD) < 0) ++calls_on_closed_vm_fd;
  }
  bool IsIrqchipGsiLocked(uint32_t gsi) {
    if (!irqchip) return false;
    if (!routing_set) return gsi < 24;  // kvm_setup_default_irq_routing
    for (const kvm_irq_routing_entry& e : routing) {
      if (e.gsi == gsi && e.type == KVM_IRQ_ROUTING_IRQCHIP) return true;
    }
    return false;
  }

  std::mutex mu_;
  std::map<int, int> index_of_;
  std::map<int, kvm_run*> runs_;
};

// Script steps.
inline FakeKvm::Step IoOut(uint16_t port, uint8_t byte) {
  return [=](kvm_run* run) {
    run->exit_reason = KVM_EXIT_IO;
    run->io.direction = KVM_EXIT_IO_OUT;
    run->io.port = port;
    run->io.size = 1;
    run->io.count = 1;
    run->io.data_offset = 4096;
    reinterpret_cast<uint8_t*>(run)[4096] = byte;
  };
}
// An MMIO exit of `len` bytes (1, 2, 4 or 8); a write carries `value`.
inline FakeKvm::Step Mmio(uint64_t addr, uint32_t len, bool write,
                          uint64_t value = 0) {
  return [=](kvm_run* run) {
    run->exit_reason = KVM_EXIT_MMIO;
    run->mmio.phys_addr = addr;
    run->mmio.len = len;
    run->mmio.is_write = write ? 1 : 0;
    std::memset(run->mmio.data, 0, sizeof(run->mmio.data));
    for (uint32_t i = 0; i < len && i < 8; ++i) {
      run->mmio.data[i] = static_cast<uint8_t>(value >> (8 * i));
    }
  };
}
// Runs `f` on kvm_run as the vCPU re-enters (e.g. to see what the VMM
// left in mmio.data for the previous read), then plays `next`.
inline FakeKvm::Step Then(std::function<void(kvm_run*)> f, FakeKvm::Step next) {
  return [=](kvm_run* run) {
    f(run);
    next(run);
  };
}
inline FakeKvm::Step Exit(uint32_t reason) {
  return [=](kvm_run* run) { run->exit_reason = reason; };
}

}  // namespace devpass::vmm::testing
