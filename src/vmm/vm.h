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
#include "pci/pci_bus.h"
#include "vmm/exits.h"
#include "vmm/guest_memory.h"
#include "vmm/kvm_api.h"
#include "vmm/serial.h"
#include "vmm/vcpu.h"

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
  Backing backing = Backing::kNormal;
  std::string name = "guest";
  // Guest bytes written to COM1; default: none.
  Serial::Output console_out;
};

struct VmStop {
  StopReason reason = StopReason::kNone;
  std::string detail;
};

// An owned KVM memory slot: deleted (size 0) on destruction.
class Memslot {
 public:
  Memslot(KvmApi& kvm, int vm_fd, const kvm_userspace_memory_region& r)
      : kvm_(&kvm), vm_fd_(vm_fd), region_(r) {}
  ~Memslot();
  Memslot(Memslot&& o) noexcept
      : kvm_(std::exchange(o.kvm_, nullptr)), vm_fd_(o.vm_fd_), region_(o.region_) {}
  Memslot& operator=(Memslot&&) = delete;
  const kvm_userspace_memory_region& region() const { return region_; }

 private:
  KvmApi* kvm_;
  int vm_fd_;
  kvm_userspace_memory_region region_;
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
  // Blocks until the VM stopped and its threads are joined.
  VmStop Wait();
  // Non-blocking: set once a stop was requested.
  bool stopping() const { return stop_.load(std::memory_order_acquire); }
  // An eventfd that becomes readable when the VM stops (for poll loops).
  int stop_fd() const { return stop_event_.get(); }

  Serial& serial() { return *serial_; }
  const pci::AddressSpace& pio() const { return pio_; }
  const GuestMemory& memory() const { return memory_; }
  const std::vector<Memslot>& memslots() const { return memslots_; }
  int vcpu_count() const { return static_cast<int>(vcpus_.size()); }

 private:
  Vm(KvmApi& kvm) : kvm_(kvm), pio_("I/O port"), mmio_("MMIO") {}
  Status Init(const Root& root, const VmConfig& config);
  Status AddDevices(const VmConfig& config);

  KvmApi& kvm_;
  UniqueFd kvm_fd_;
  UniqueFd vm_fd_;
  GuestMemory memory_;
  std::vector<Memslot> memslots_;
  pci::AddressSpace pio_;
  pci::AddressSpace mmio_;
  std::shared_ptr<Serial> serial_;
  std::shared_ptr<pci::PciBus> pci_bus_;
  std::vector<Vcpu> vcpus_;
  UniqueFd stop_event_;

  std::atomic<bool> stop_{false};
  std::mutex mu_;
  VmStop stop_info_;
  std::vector<std::thread> threads_;
};

}  // namespace devpass::vmm
