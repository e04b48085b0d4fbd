#include "vmm/kvm_api.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace devpass::vmm {
namespace {

// <linux/kvm.h> declares the tables of kvm_cpuid2 and kvm_msrs with
// __DECLARE_FLEX_ARRAY, whose empty struct takes one byte in C++: entries
// move to offset 12 / 16 and the size encoded in the ioctl numbers changes
// (the kernel then answers EINVAL). Use the C layout explicitly.
struct Cpuid2Header {
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
// Same for kvm_irq_routing: { u32 nr; u32 flags; entries[] } with the table
// at offset 8 (KVM_SET_GSI_ROUTING = _IOW(KVMIO, 0x6a, 8 bytes) = 0x4008ae6a).
struct IrqRoutingHeader {
  uint32_t nr;
  uint32_t flags;
};
constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);
static_assert(kSetGsiRouting == 0x4008ae6a);
static_assert(sizeof(kvm_irq_routing_entry) == 48);

// ioctl that retries nothing: EINTR matters to KVM_RUN's caller.
template <typename Arg>
int Ioctl(int fd, unsigned long request, Arg arg) {
  return ::ioctl(fd, request, arg);
}

tl::unexpected<Error> IoctlError(const char* name) {
  int err = errno;
  return ErrnoError(err,
                    fmt::format("{} failed: {}", name, std::strerror(err)));
}

class SystemKvmApi : public KvmApi {
 public:
  Result<UniqueFd> OpenKvm(const std::filesystem::path& dev) override {
    int fd = ::open(dev.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT || err == ENXIO || err == ENODEV) {
        return ErrnoError(
            err,
            fmt::format(
                "{} does not exist, so KVM is not available: load kvm_intel or "
                "kvm_amd (modprobe kvm_intel / modprobe kvm_amd) and enable "
                "VT-x/AMD-V in the firmware setup",
                dev.string()));
      }
      if (err == EACCES || err == EPERM) {
        return ErrnoError(
            err,
            fmt::format(
                "cannot open {}: permission denied. Add yourself to the kvm "
                "group "
                "(usermod -aG kvm $USER, then log in again) or run as root",
                dev.string()));
      }
      return ErrnoError(err, fmt::format("cannot open {}: {}", dev.string(),
                                         std::strerror(err)));
    }
    return UniqueFd(fd);
  }

  Result<int> ApiVersion(int kvm_fd) override {
    int v = Ioctl(kvm_fd, KVM_GET_API_VERSION, 0);
    if (v < 0) return IoctlError("KVM_GET_API_VERSION");
    return v;
  }

  Result<int> CheckExtension(int fd, int capability) override {
    int v = Ioctl(fd, KVM_CHECK_EXTENSION, capability);
    if (v < 0) return IoctlError("KVM_CHECK_EXTENSION");
    return v;
  }

  Result<int> VcpuMmapSize(int kvm_fd) override {
    int v = Ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (v < 0) return IoctlError("KVM_GET_VCPU_MMAP_SIZE");
    return v;
  }

  Result<std::vector<kvm_cpuid_entry2>> SupportedCpuid(int kvm_fd) override {
    // As QEMU does: grow from a small table while the kernel says E2BIG
    // (or fills the table completely, which may mean it was cut short).
    std::string tried;
    for (uint32_t n = 8; n <= 4096; n *= 2) {
      std::vector<uint8_t> buf(sizeof(Cpuid2Header) +
                               n * sizeof(kvm_cpuid_entry2));
      auto* c = reinterpret_cast<Cpuid2Header*>(buf.data());
      c->nent = n;
      int rc = Ioctl(kvm_fd, kGetSupportedCpuid, c);
      int err = errno;
      if (rc == 0 && c->nent < n) {
        std::vector<kvm_cpuid_entry2> out(c->nent);
        std::memcpy(out.data(), buf.data() + sizeof(Cpuid2Header),
                    c->nent * sizeof(kvm_cpuid_entry2));
        return out;
      }
      tried += fmt::format(" {}:{}", n, rc == 0 ? "full" : std::strerror(err));
      if (rc != 0 && err != E2BIG) {
        return ErrnoError(err,
                          fmt::format("KVM_GET_SUPPORTED_CPUID failed (table "
                                      "sizes tried:{})",
                                      tried));
      }
    }
    return MakeError(
        ErrorCode::kKernelRejected,
        fmt::format("KVM_GET_SUPPORTED_CPUID: no table size worked "
                    "(tried:{})",
                    tried));
  }

  Result<UniqueFd> CreateVm(int kvm_fd) override {
    int fd;
    do {
      fd = Ioctl(kvm_fd, KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return IoctlError("KVM_CREATE_VM");
    return UniqueFd(fd);
  }

  Status SetTssAddr(int vm_fd, uint64_t addr) override {
    if (Ioctl(vm_fd, KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0) {
      return IoctlError("KVM_SET_TSS_ADDR");
    }
    return Ok();
  }

  Status SetIdentityMapAddr(int vm_fd, uint64_t addr) override {
    __u64 a = addr;
    if (Ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &a) < 0) {
      return IoctlError("KVM_SET_IDENTITY_MAP_ADDR");
    }
    return Ok();
  }

  Status CreateIrqchip(int vm_fd) override {
    if (Ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
      return IoctlError("KVM_CREATE_IRQCHIP");
    return Ok();
  }

  Status CreatePit2(int vm_fd) override {
    kvm_pit_config config{};
    config.flags = KVM_PIT_SPEAKER_DUMMY;  // port 0x61 answered in the kernel
    if (Ioctl(vm_fd, KVM_CREATE_PIT2, &config) < 0)
      return IoctlError("KVM_CREATE_PIT2");
    return Ok();
  }

  Status SetUserMemoryRegion(int vm_fd,
                             const kvm_userspace_memory_region& r) override {
    if (Ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
      return IoctlError("KVM_SET_USER_MEMORY_REGION");
    }
    return Ok();
  }

  Status IrqLine(int vm_fd, uint32_t irq, bool level) override {
    kvm_irq_level l{};
    l.irq = irq;
    l.level = level ? 1 : 0;
    if (Ioctl(vm_fd, KVM_IRQ_LINE, &l) < 0) return IoctlError("KVM_IRQ_LINE");
    return Ok();
  }

  Status SetGsiRouting(
      int vm_fd, const std::vector<kvm_irq_routing_entry>& entries) override {
    std::vector<uint8_t> buf(sizeof(IrqRoutingHeader) +
                             entries.size() * sizeof(kvm_irq_routing_entry));
    auto* h = reinterpret_cast<IrqRoutingHeader*>(buf.data());
    h->nr = static_cast<uint32_t>(entries.size());
    h->flags = 0;
    std::memcpy(buf.data() + sizeof(IrqRoutingHeader), entries.data(),
                entries.size() * sizeof(kvm_irq_routing_entry));
    if (Ioctl(vm_fd, kSetGsiRouting, h) < 0)
      return IoctlError("KVM_SET_GSI_ROUTING");
    return Ok();
  }

  Status Irqfd(int vm_fd, const kvm_irqfd& irqfd) override {
    if (Ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0) {
      return IoctlError((irqfd.flags & KVM_IRQFD_FLAG_DEASSIGN)
                            ? "KVM_IRQFD (deassign)"
                            : "KVM_IRQFD (assign)");
    }
    return Ok();
  }

  Result<UniqueFd> CreateDevice(int vm_fd, uint32_t type) override {
    kvm_create_device d{};
    d.type = type;
    if (Ioctl(vm_fd, KVM_CREATE_DEVICE, &d) < 0)
      return IoctlError("KVM_CREATE_DEVICE");
    return UniqueFd(static_cast<int>(d.fd));
  }

  Status SetDeviceAttr(int device_fd, const kvm_device_attr& attr) override {
    if (Ioctl(device_fd, KVM_SET_DEVICE_ATTR, &attr) < 0) {
      return IoctlError("KVM_SET_DEVICE_ATTR");
    }
    return Ok();
  }

  Result<UniqueFd> CreateVcpu(int vm_fd, int id) override {
    int fd = Ioctl(vm_fd, KVM_CREATE_VCPU, id);
    if (fd < 0) return IoctlError("KVM_CREATE_VCPU");
    return UniqueFd(fd);
  }

  Result<RunMapping> MapRun(int vcpu_fd, size_t size) override {
    void* p =
        ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
    if (p == MAP_FAILED) return IoctlError("mmap of kvm_run");
    return RunMapping(p, size, [](void* a, size_t s) { ::munmap(a, s); });
  }

  Status SetCpuid(int vcpu_fd,
                  const std::vector<kvm_cpuid_entry2>& entries) override {
    std::vector<uint8_t> buf(sizeof(Cpuid2Header) +
                             entries.size() * sizeof(kvm_cpuid_entry2));
    auto* c = reinterpret_cast<Cpuid2Header*>(buf.data());
    c->nent = static_cast<uint32_t>(entries.size());
    std::memcpy(buf.data() + sizeof(Cpuid2Header), entries.data(),
                entries.size() * sizeof(kvm_cpuid_entry2));
    if (Ioctl(vcpu_fd, kSetCpuid2, c) < 0) return IoctlError("KVM_SET_CPUID2");
    return Ok();
  }

  Result<kvm_sregs> GetSregs(int vcpu_fd) override {
    kvm_sregs s{};
    if (Ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0)
      return IoctlError("KVM_GET_SREGS");
    return s;
  }
  Status SetSregs(int vcpu_fd, const kvm_sregs& s) override {
    if (Ioctl(vcpu_fd, KVM_SET_SREGS, &s) < 0)
      return IoctlError("KVM_SET_SREGS");
    return Ok();
  }
  Result<kvm_regs> GetRegs(int vcpu_fd) override {
    kvm_regs r{};
    if (Ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0) return IoctlError("KVM_GET_REGS");
    return r;
  }
  Status SetRegs(int vcpu_fd, const kvm_regs& r) override {
    if (Ioctl(vcpu_fd, KVM_SET_REGS, &r) < 0) return IoctlError("KVM_SET_REGS");
    return Ok();
  }
  Status SetFpu(int vcpu_fd, const kvm_fpu& f) override {
    if (Ioctl(vcpu_fd, KVM_SET_FPU, &f) < 0) return IoctlError("KVM_SET_FPU");
    return Ok();
  }
  Status SetMsrs(int vcpu_fd, const std::vector<Msr>& msrs) override {
    std::vector<uint8_t> buf(sizeof(MsrsHeader) +
                             msrs.size() * sizeof(kvm_msr_entry));
    auto* m = reinterpret_cast<MsrsHeader*>(buf.data());
    m->nmsrs = static_cast<uint32_t>(msrs.size());
    auto* e = reinterpret_cast<kvm_msr_entry*>(buf.data() + sizeof(MsrsHeader));
    for (size_t i = 0; i < msrs.size(); ++i) {
      e[i] = kvm_msr_entry{};
      e[i].index = msrs[i].index;
      e[i].data = msrs[i].value;
    }
    int n = Ioctl(vcpu_fd, kSetMsrs, m);
    if (n < 0) return IoctlError("KVM_SET_MSRS");
    if (static_cast<size_t>(n) != msrs.size()) {
      return MakeError(
          ErrorCode::kKernelRejected,
          fmt::format("KVM_SET_MSRS set {} of {} MSRs; MSR {:#x} was "
                      "refused",
                      n, msrs.size(), msrs[n].index));
    }
    return Ok();
  }
  Result<kvm_lapic_state> GetLapic(int vcpu_fd) override {
    kvm_lapic_state s{};
    if (Ioctl(vcpu_fd, KVM_GET_LAPIC, &s) < 0)
      return IoctlError("KVM_GET_LAPIC");
    return s;
  }
  Status SetLapic(int vcpu_fd, const kvm_lapic_state& s) override {
    if (Ioctl(vcpu_fd, KVM_SET_LAPIC, &s) < 0)
      return IoctlError("KVM_SET_LAPIC");
    return Ok();
  }
  Status Run(int vcpu_fd) override {
    if (Ioctl(vcpu_fd, KVM_RUN, 0) < 0) return IoctlError("KVM_RUN");
    return Ok();
  }
  Status Nmi(int vcpu_fd) override {
    if (Ioctl(vcpu_fd, KVM_NMI, 0) < 0) return IoctlError("KVM_NMI");
    return Ok();
  }
};

}  // namespace

std::unique_ptr<KvmApi> NewSystemKvmApi() {
  return std::make_unique<SystemKvmApi>();
}

}  // namespace devpass::vmm
