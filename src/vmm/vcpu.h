#pragma once

// One virtual CPU: its KVM fd, its mapped kvm_run, its initial state and its
// run loop. The Vm owns the vCPUs and runs each on its own thread.

#include <linux/kvm.h>

#include <atomic>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "pci/address_space.h"
#include "vmm/exits.h"
#include "vmm/kvm_api.h"
#include "vmm/layout.h"

namespace devpass::vmm {

class Vcpu {
 public:
  static Result<Vcpu> Create(KvmApi& kvm, int vm_fd, int index,
                             size_t run_size);
  Vcpu(Vcpu&&) = default;
  Vcpu& operator=(Vcpu&&) = default;

  // CPUID and LINT0/LINT1 on every vCPU. The boot processor (index 0) also
  // gets the 64-bit entry state: long-mode sregs, RIP/RSI, FPU, MSRs. The
  // others wait in the in-kernel LAPIC for the guest's INIT/SIPI.
  Status Configure(const std::vector<kvm_cpuid_entry2>& supported, int count,
                   Gpa entry, Gpa boot_params);

  // KVM_RUN until an exit says stop or `stop` is set (after a Kick()).
  // Whenever `nmi_requests` has grown since the last look (and a Kick()
  // brought the thread out of KVM_RUN), queues one NMI (KVM_NMI).
  ExitOutcome RunLoop(const pci::AddressSpace& pio,
                      const pci::AddressSpace& mmio,
                      const std::atomic<bool>& stop,
                      const std::atomic<uint32_t>& nmi_requests);

  // Makes the next or current KVM_RUN return (with a signal to the thread).
  void Kick();

  // RIP, RSP, flags, CR0/2/3/4, EFER and the segments, for crash reports.
  std::string DumpRegisters() const;

  // How many exits reached devpass, the last one, and the registers: what
  // the guest was doing when the host stopped it (a guest that hangs is
  // stopped by SIGTERM, e.g. from timeout(1)). Only once RunLoop returned.
  std::string DescribeState() const;

  int index() const { return index_; }

 private:
  Vcpu(KvmApi& kvm, int index, UniqueFd fd, RunMapping run)
      : kvm_(&kvm), index_(index), fd_(std::move(fd)), run_(std::move(run)) {}
  KvmApi* kvm_;
  int index_;
  UniqueFd fd_;
  RunMapping run_;  // unmapped before fd_ closes (declared after it)
  // Written by the vCPU's thread only, read after it was joined.
  uint64_t exits_ = 0;
  VcpuExit last_exit_ = ExitInterrupted{};
  uint32_t nmis_seen_ = 0;      // nmi_requests as last acted on
  uint32_t nmis_injected_ = 0;  // KVM_NMI calls that succeeded
};

// Formats registers and segments (separate for unit tests).
std::string FormatRegisters(int index, const kvm_regs& r, const kvm_sregs& s);

}  // namespace devpass::vmm
