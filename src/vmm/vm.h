#pragma once

// A KVM virtual machine that boots a Linux bzImage: guest RAM and its
// memslots, the in-kernel irqchip and PIT, the 64-bit boot state, the MP
// table, COM1, the PCI host bridge behind ports 0xCF8/0xCFC, the i8042 reset
// line and the devpass power-off port; one thread per vCPU.
//
// Create() does everything that can fail; a failure leaves nothing behind
// (every fd, mapping and memslot is an RAII member, torn down in reverse
// order of creation). Start() launches the vCPU threads; the VM then runs
// until a vCPU stops it (power-off, reset, crash) or Stop() is called.
//
// Device assignment: between Create() and Start(), passthrough functions
// join pci_bus() and get what they need from the VMM through platform()
// (memslots for BARs, MMIO/port traps, MSI and INTx routes) and
// AddKvmVfioGroup(). Teardown releases the devices first (their
// registrations go while the address spaces, memslot table, IRQ router and
// KVM-VFIO device still exist), then the members in reverse order, the VM
// fd last but /dev/kvm.

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "base/root.h"
#include "pci/address_space.h"
#include "pci/guest_platform.h"
#include "pci/pci_bus.h"
#include "vmm/exits.h"
#include "vmm/guest_memory.h"
#include "vmm/irq_routing.h"
#include "vmm/kvm_api.h"
#include "vmm/kvm_vfio.h"
#include "vmm/memslots.h"
#include "vmm/serial.h"
#include "vmm/vcpu.h"
#include "vmm/vm_platform.h"

namespace devpass::vmm {

// Always put before the user's command line (later words win in Linux):
// the console on COM1, and a panic turns into a reset devpass can see.
inline constexpr char kDefaultCmdline[] = "console=ttyS0 panic=-1";

struct VmConfig {
  std::filesystem::path kernel;
  std::optional<std::filesystem::path> initrd;
  std::string cmdline = kDefaultCmdline;  // the whole command line
  uint64_t mem_bytes = 512 * kMiB;
  int cpus = 1;
  Backing backing = Backing::kThp;
  std::string name = "guest";
  // Guest bytes written to COM1; default: none.
  Serial::Output console_out;
};

struct VmStop {
  StopReason reason = StopReason::kNone;
  std::string detail;
};

class Vm {
 public:
  static Result<std::unique_ptr<Vm>> Create(KvmApi& kvm, const Root& root,
                                            const VmConfig& config);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Starts one thread per vCPU.
  Status Start();
  // Asks every vCPU to stop (thread-safe; the first reason wins).
  void Stop(StopReason reason, std::string detail);
  // Blocks until the VM stopped and its threads are joined. A stop by a
  // signal gets each vCPU's state appended to its detail (Vcpu::DescribeState).
  VmStop Wait();
  // Queues an NMI on every vCPU (thread-safe), as QEMU's `nmi` monitor
  // command and `virsh inject-nmi` do: a guest kernel that hangs with
  // interrupts off still takes it, and Linux prints where it was (with
  // unknown_nmi_panic on its command line it panics with a backtrace).
  void InjectNmi();
  // Non-blocking: set once a stop was requested.
  bool stopping() const { return stop_.load(std::memory_order_acquire); }
  // An eventfd that becomes readable when the VM stops (for poll loops).
  int stop_fd() const { return stop_event_.get(); }

  Serial& serial() { return *serial_; }
  const pci::AddressSpace& pio() const { return pio_; }
  const pci::AddressSpace& mmio() const { return mmio_; }
  const GuestMemory& memory() const { return memory_; }
  int vcpu_count() const { return static_cast<int>(vcpus_.size()); }

  // ---- device assignment.
  KvmApi& kvm() const { return kvm_; }
  int vm_fd() const { return vm_fd_.get(); }
  // The guest's PCI bus 0 (00:00.0 is the host bridge). Add devices before
  // Start(): PciBus is not synchronized against a running guest.
  pci::PciBus& pci_bus() { return *pci_bus_; }
  // What a passthrough function asks the VMM for (vm_platform.h). Lives as
  // long as the Vm; registrations it hands out may outlive both.
  pci::GuestPlatform& platform() { return *platform_; }
  MemslotTable& memslots() { return *memslots_; }
  IrqRouter& irq_router() { return *irq_router_; }
  // Base of the 64-bit PCI MMIO window (layout::kMmio64Size long): the first
  // layout::kMmio64Alignment boundary above the end of RAM, never below
  // 4 GiB.
  Gpa mmio64_base() const;
  // Tells KVM the VM uses the VFIO group behind `group_fd` (KVM-VFIO device,
  // created on first call; kvm_vfio.h). Dropping the registration deletes
  // the group again. Thread-safe.
  Result<pci::RegistrationPtr> AddKvmVfioGroup(int group_fd);

 private:
  Vm(KvmApi& kvm) : kvm_(kvm), pio_("I/O port"), mmio_("MMIO") {}
  Status Init(const Root& root, const VmConfig& config);
  Status AddDevices(const VmConfig& config);
  // Brings every vCPU thread out of KVM_RUN. Caller holds mu_.
  void KickAllLocked();

  // Declared in order of creation: destroyed in reverse, so that everything
  // that talks to KVM through vm_fd_ (irqfds, routes, the KVM-VFIO device,
  // memslots) is gone before vm_fd_ closes, and memslots before RAM.
  KvmApi& kvm_;
  UniqueFd kvm_fd_;
  UniqueFd vm_fd_;
  std::mutex kvm_vfio_mu_;
  std::unique_ptr<KvmVfioDevice> kvm_vfio_;  // created on first use
  std::unique_ptr<IrqRouter> irq_router_;    // after the irqchip
  GuestMemory memory_;
  std::unique_ptr<MemslotTable> memslots_;
  std::vector<MemslotTable::Slot> ram_slots_;
  pci::AddressSpace pio_;
  pci::AddressSpace mmio_;
  std::unique_ptr<VmPlatform> platform_;
  std::shared_ptr<Serial> serial_;
  std::shared_ptr<pci::PciBus> pci_bus_;
  std::vector<Vcpu> vcpus_;
  UniqueFd stop_event_;

  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> nmi_requests_{0};
  std::mutex mu_;
  VmStop stop_info_;
  std::vector<std::thread> threads_;
};

}  // namespace devpass::vmm
