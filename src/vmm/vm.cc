#include "vm.h"

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "pci/host_bridge.h"
#include "vmm/acpi.h"
#include "vmm/linux_loader.h"
#include "vmm/mptable.h"
#include "vmm/platform_devices.h"
#include "vmm/rtc.h"
#include "vmm/x86_boot.h"

namespace devpass::vmm {
namespace {

constexpr int kKvmApiVersion = 12;  // KVM_API_VERSION, stable since 2.6.22

// The signal that kicks a vCPU thread out of KVM_RUN. Its handler does
// nothing: the point is the EINTR.
int KickSignal() { return SIGRTMIN; }

void InstallKickHandler() {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(KickSignal(), &sa, nullptr);
    return true;
  }();
  (void)installed;
}

Result<std::vector<uint8_t>> ReadWhole(const std::filesystem::path& path,
                                       const char* what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return MakeError(ErrorCode::kNotFound,
                     fmt::format("{} {} does not exist; give the path of an "
                                 "existing file",
                                 what, path.string()));
  }
  if (std::filesystem::is_directory(path, ec)) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} {} is a directory, not a file", what, path.string()));
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return ErrnoError(ec.value(), fmt::format("cannot read {} {}: {}", what,
                                              path.string(), ec.message()));
  }
  return ReadBytes(path, static_cast<size_t>(size));
}

struct CapabilityNeed {
  int cap;
  const char* name;
};

}  // namespace

Result<std::unique_ptr<Vm>> Vm::Create(KvmApi& kvm, const Root& root,
                                       const VmConfig& config) {
  std::unique_ptr<Vm> vm(new Vm(kvm));
  DP_RETURN_IF_ERROR(vm->Init(root, config));
  return vm;
}

Status Vm::Init(const Root& root, const VmConfig& config) {
  // ---- files first: the cheapest checks, and they need no KVM.
  DP_ASSIGN_OR_RETURN(std::vector<uint8_t> kernel,
                      ReadWhole(config.kernel, "kernel"));
  DP_ASSIGN_OR_RETURN(BzImage img,
                      ParseBzImage(kernel, config.kernel.string()));
  (void)img;
  std::vector<uint8_t> initrd;
  if (config.initrd) {
    DP_ASSIGN_OR_RETURN(initrd, ReadWhole(*config.initrd, "initrd"));
  }
  if (config.cpus < 1 || config.cpus > kMaxVcpus) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("--cpus {}: devpass supports 1 to {} vCPUs",
                                 config.cpus, kMaxVcpus));
  }

  // ---- is there enough memory, before asking for it.
  DP_ASSIGN_OR_RETURN(MemInfo meminfo, ReadMemInfo(root));
  DP_RETURN_IF_ERROR(
      CheckHostMemory(meminfo, config.mem_bytes, config.backing));

  // ---- KVM and what we need of it.
  DP_ASSIGN_OR_RETURN(kvm_fd_, kvm_.OpenKvm(root.Dev("kvm")));
  DP_ASSIGN_OR_RETURN(int api, kvm_.ApiVersion(kvm_fd_.get()));
  if (api != kKvmApiVersion) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("{} reports KVM API version {}, devpass speaks "
                    "version {}",
                    root.Display(root.Dev("kvm")), api, kKvmApiVersion));
  }
  static constexpr CapabilityNeed kNeeds[] = {
      {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
      {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
      {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
      {KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR"},
      {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
      {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
  };
  for (const CapabilityNeed& need : kNeeds) {
    DP_ASSIGN_OR_RETURN(int has, kvm_.CheckExtension(kvm_fd_.get(), need.cap));
    if (has <= 0) {
      return MakeError(
          ErrorCode::kUnsupported,
          fmt::format("the host's KVM lacks {}; devpass needs Linux "
                      "4.11 or later on an x86-64 host",
                      need.name));
    }
  }
  DP_ASSIGN_OR_RETURN(int max_vcpus,
                      kvm_.CheckExtension(kvm_fd_.get(), KVM_CAP_MAX_VCPUS));
  if (max_vcpus > 0 && config.cpus > max_vcpus) {
    return MakeError(ErrorCode::kUnsupported,
                     fmt::format("--cpus {}: the host's KVM allows at most {} "
                                 "vCPUs per VM",
                                 config.cpus, max_vcpus));
  }
  DP_ASSIGN_OR_RETURN(int run_size, kvm_.VcpuMmapSize(kvm_fd_.get()));
  DP_ASSIGN_OR_RETURN(std::vector<kvm_cpuid_entry2> cpuid,
                      kvm_.SupportedCpuid(kvm_fd_.get()));

  // ---- the VM: Intel VMX needs the TSS and identity-map pages before the
  // first vCPU; the irqchip before the PIT and the vCPUs.
  DP_ASSIGN_OR_RETURN(vm_fd_, kvm_.CreateVm(kvm_fd_.get()));
  DP_RETURN_IF_ERROR(kvm_.SetTssAddr(vm_fd_.get(), layout::kKvmTss.value));
  DP_RETURN_IF_ERROR(
      kvm_.SetIdentityMapAddr(vm_fd_.get(), layout::kKvmIdentityMap.value));
  DP_RETURN_IF_ERROR(kvm_.CreateIrqchip(vm_fd_.get()));
  DP_RETURN_IF_ERROR(kvm_.CreatePit2(vm_fd_.get()));
  // KVM's default GSI routing is in force until the first MSI route;
  // KVM_CAP_IRQ_ROUTING is the number of GSIs a table may use (0: none,
  // and then no MSI routes).
  DP_ASSIGN_OR_RETURN(int gsis,
                      kvm_.CheckExtension(kvm_fd_.get(), KVM_CAP_IRQ_ROUTING));
  irq_router_ = std::make_unique<IrqRouter>(
      kvm_, vm_fd_.get(), static_cast<uint32_t>(std::max(gsis, 0)));

  // ---- RAM and its memslots. KVM_CAP_NR_MEMSLOTS absent means 32
  // (Documentation/virt/kvm/api.rst, KVM_SET_USER_MEMORY_REGION).
  DP_ASSIGN_OR_RETURN(memory_,
                      GuestMemory::Create(config.mem_bytes, config.backing));
  DP_ASSIGN_OR_RETURN(int nr_slots,
                      kvm_.CheckExtension(kvm_fd_.get(), KVM_CAP_NR_MEMSLOTS));
  memslots_ = std::make_unique<MemslotTable>(
      kvm_, vm_fd_.get(), nr_slots > 0 ? static_cast<uint32_t>(nr_slots) : 32);
  for (const RamRegion& r : memory_.regions()) {
    DP_ASSIGN_OR_RETURN(
        MemslotTable::Slot slot,
        memslots_->Map(r.start, r.size, memory_.host_base() + r.host_offset,
                       r.start < layout::k4GiB ? "guest RAM below 4 GiB"
                                               : "guest RAM above 4 GiB"));
    ram_slots_.push_back(std::move(slot));
  }
  platform_ = std::make_unique<VmPlatform>(pio_, mmio_, *memslots_,
                                           *irq_router_, memory_.regions());

  // ---- the guest's boot data.
  std::string_view cmdline = config.cmdline;
  DP_ASSIGN_OR_RETURN(
      LinuxEntry entry,
      LoadLinux(memory_, kernel, config.kernel.string(), initrd, cmdline));
  const auto gdt = BootGdt();
  DP_RETURN_IF_ERROR(memory_.Write(
      layout::kGdt, std::span(reinterpret_cast<const uint8_t*>(gdt.data()),
                              gdt.size() * sizeof(uint64_t))));
  DP_RETURN_IF_ERROR(memory_.Write(layout::kPml4, BuildIdentityPageTables()));
  DP_ASSIGN_OR_RETURN(std::vector<uint8_t> mp,
                      BuildMpTable(config.cpus, layout::kMpTable));
  DP_RETURN_IF_ERROR(memory_.Write(layout::kMpTable, mp));
  DP_ASSIGN_OR_RETURN(
      std::vector<uint8_t> acpi,
      BuildAcpiTables({config.cpus, memory_.regions().back().end().value},
                      layout::kAcpiTables));
  DP_RETURN_IF_ERROR(memory_.Write(layout::kAcpiTables, acpi));

  DP_RETURN_IF_ERROR(AddDevices(config));

  // ---- vCPUs.
  for (int i = 0; i < config.cpus; ++i) {
    DP_ASSIGN_OR_RETURN(Vcpu vcpu, Vcpu::Create(kvm_, vm_fd_.get(), i,
                                                static_cast<size_t>(run_size)));
    DP_RETURN_IF_ERROR(
        vcpu.Configure(cpuid, config.cpus, entry.entry, entry.boot_params));
    vcpus_.push_back(std::move(vcpu));
  }

  int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0)
    return ErrnoError(errno, "eventfd for the VM's stop signal failed");
  stop_event_.Reset(efd);
  return Ok();
}

Status Vm::AddDevices(const VmConfig& config) {
  const int vm_fd = vm_fd_.get();
  KvmApi* kvm = &kvm_;
  serial_ =
      std::make_shared<Serial>(config.console_out, [kvm, vm_fd](bool level) {
        (void)kvm->IrqLine(vm_fd, layout::kCom1Gsi.value, level);
      });
  DP_RETURN_IF_ERROR(pio_.Add(layout::kCom1Port, 8, serial_, "COM1 (16550A)"));
  DP_RETURN_IF_ERROR(pio_.Add(
      layout::kI8042DataPort, I8042Stub::kSize,
      std::make_shared<I8042Stub>([this] {
        Stop(StopReason::kReset,
             "the guest reset the machine (a reboot, or a kernel panic with "
             "panic=-1)");
      }),
      "i8042 reset line"));
  DP_RETURN_IF_ERROR(
      pio_.Add(layout::kPowerOffPort, PowerOffPort::kSize,
               std::make_shared<PowerOffPort>([this](uint8_t code) {
                 Stop(StopReason::kPowerOff,
                      fmt::format("the guest powered off (code {})", code));
               }),
               "devpass power-off port"));
  DP_RETURN_IF_ERROR(pio_.Add(
      layout::kAcpiPm1aEventPort, AcpiPmBlock::kSize,
      std::make_shared<AcpiPmBlock>(kAcpiS5SleepType,
                                    [this] {
                                      Stop(StopReason::kPowerOff,
                                           "the guest powered off (ACPI S5)");
                                    }),
      "ACPI PM1a registers"));
  DP_RETURN_IF_ERROR(pio_.Add(layout::kRtcPort, Rtc::kSize,
                              std::make_shared<Rtc>(), "RTC/CMOS"));
  pci_bus_ = std::make_shared<pci::PciBus>();
  DP_RETURN_IF_ERROR(pci_bus_->Add(0, 0, std::make_shared<pci::HostBridge>()));
  DP_RETURN_IF_ERROR(pio_.Add(pci::kConfigAddressPort, pci::kConfigPortsSize,
                              std::make_shared<pci::ConfigIo>(pci_bus_),
                              "PCI configuration ports"));
  return Ok();
}

Status Vm::Start() {
  InstallKickHandler();
  // mu_ held while threads are created: Stop() (from a vCPU thread that
  // stops early) reads threads_ under it.
  std::lock_guard lock(mu_);
  threads_.reserve(vcpus_.size());
  for (Vcpu& vcpu : vcpus_) {
    Vcpu* v = &vcpu;
    threads_.emplace_back([this, v] {
      // vCPU threads take only the kick; SIGINT/SIGTERM go to the main loop.
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGINT);
      sigaddset(&set, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
      sigemptyset(&set);
      sigaddset(&set, KickSignal());
      pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
      std::string name = fmt::format("vcpu{}", v->index());
      pthread_setname_np(pthread_self(), name.c_str());
      ExitOutcome out = v->RunLoop(pio_, mmio_, stop_, nmi_requests_);
      if (out.stop != StopReason::kNone) Stop(out.stop, std::move(out.detail));
    });
  }
  return Ok();
}

void Vm::Stop(StopReason reason, std::string detail) {
  {
    std::lock_guard lock(mu_);
    if (stop_info_.reason == StopReason::kNone) {
      stop_info_ = {reason, std::move(detail)};
    }
    stop_.store(true, std::memory_order_release);
    KickAllLocked();
  }
  if (stop_event_.valid()) {
    uint64_t one = 1;
    ssize_t n = ::write(stop_event_.get(), &one, sizeof(one));
    (void)n;
  }
}

void Vm::KickAllLocked() {
  for (size_t i = 0; i < vcpus_.size(); ++i) {
    vcpus_[i].Kick();
    if (i < threads_.size())
      pthread_kill(threads_[i].native_handle(), KickSignal());
  }
}

void Vm::InjectNmi() {
  std::lock_guard lock(mu_);
  nmi_requests_.fetch_add(1, std::memory_order_release);
  KickAllLocked();
}

VmStop Vm::Wait() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  const bool joined = !threads_.empty();
  threads_.clear();
  std::lock_guard lock(mu_);
  VmStop stop = stop_info_;
  // Stopped from the host: say where each vCPU was, so that a guest that hung
  // (and was killed by a timeout) leaves more behind than "stopped".
  if (joined && stop.reason == StopReason::kSignal) {
    for (const Vcpu& v : vcpus_) stop.detail += "\n" + v.DescribeState();
    if (serial_) stop.detail += "\n" + serial_->DescribeState();
  }
  return stop;
}

Gpa Vm::mmio64_base() const {
  const auto& regions = memory_.regions();
  return layout::Mmio64Base(regions.empty() ? 0 : regions.back().end().value);
}

Result<pci::RegistrationPtr> Vm::AddKvmVfioGroup(int group_fd) {
  std::lock_guard lock(kvm_vfio_mu_);
  if (!kvm_vfio_) {
    DP_ASSIGN_OR_RETURN(kvm_vfio_, KvmVfioDevice::Create(kvm_, vm_fd_.get()));
  }
  return kvm_vfio_->AddGroup(group_fd);
}

Vm::~Vm() {
  if (!threads_.empty()) {
    Stop(StopReason::kSignal, "devpass is shutting the VM down");
    Wait();
  }
  // Devices first, while what they registered with still exists. The bus is
  // also held by the configuration-port handler in pio_ (and a device's
  // traps by mmio_/pio_), hence the address spaces are emptied here; their
  // handlers are released outside the spaces' locks, so a device's
  // registrations may remove their ranges as they go.
  pci_bus_.reset();
  pio_.Clear();
  mmio_.Clear();
  // Then the members, in reverse order of declaration: platform_, the RAM
  // memslots and the memslot table (slots left by devices held elsewhere
  // are deleted), RAM, the IRQ router (irqfds still bound are deassigned),
  // the KVM-VFIO device (groups deleted), the VM fd.
}

}  // namespace devpass::vmm
