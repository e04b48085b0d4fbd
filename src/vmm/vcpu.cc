#include "vmm/vcpu.h"

#include <fmt/format.h>

#include <cerrno>

#include "vmm/x86_boot.h"

namespace devpass::vmm {

Result<Vcpu> Vcpu::Create(KvmApi& kvm, int vm_fd, int index, size_t run_size) {
  DP_ASSIGN_OR_RETURN(UniqueFd fd, kvm.CreateVcpu(vm_fd, index));
  DP_ASSIGN_OR_RETURN(RunMapping run, kvm.MapRun(fd.get(), run_size));
  return Vcpu(kvm, index, std::move(fd), std::move(run));
}

Status Vcpu::Configure(const std::vector<kvm_cpuid_entry2>& supported,
                       int count, Gpa entry, Gpa boot_params) {
  DP_RETURN_IF_ERROR(
      kvm_->SetCpuid(fd_.get(), FilterCpuid(supported, index_, count)));
  DP_ASSIGN_OR_RETURN(kvm_lapic_state lapic, kvm_->GetLapic(fd_.get()));
  SetLintVirtualWire(lapic);
  DP_RETURN_IF_ERROR(kvm_->SetLapic(fd_.get(), lapic));
  if (index_ != 0) return Ok();
  DP_RETURN_IF_ERROR(kvm_->SetMsrs(fd_.get(), BootMsrs()));
  DP_ASSIGN_OR_RETURN(kvm_sregs sregs, kvm_->GetSregs(fd_.get()));
  DP_RETURN_IF_ERROR(kvm_->SetSregs(fd_.get(), LongModeSregs(sregs)));
  DP_RETURN_IF_ERROR(kvm_->SetFpu(fd_.get(), BootFpu()));
  DP_RETURN_IF_ERROR(kvm_->SetRegs(fd_.get(), BootRegs(entry, boot_params)));
  return Ok();
}

ExitOutcome Vcpu::RunLoop(const pci::AddressSpace& pio,
                          const pci::AddressSpace& mmio,
                          const std::atomic<bool>& stop,
                          const std::atomic<uint32_t>& nmi_requests) {
  while (!stop.load(std::memory_order_acquire)) {
    const uint32_t nmis = nmi_requests.load(std::memory_order_acquire);
    if (nmis != nmis_seen_) {
      nmis_seen_ = nmis;
      if (kvm_->Nmi(fd_.get())) ++nmis_injected_;
    }
    Status st = kvm_->Run(fd_.get());
    if (!st) {
      if (st.error().sys_errno == EINTR || st.error().sys_errno == EAGAIN) {
        run_.run()->immediate_exit = 0;
        continue;  // kicked: the loop condition decides
      }
      return {StopReason::kCrash,
              fmt::format("vCPU {}: {}", index_, st.error().ToString())};
    }
    VcpuExit exit = DecodeExit(run_.run(), run_.size());
    ++exits_;
    last_exit_ = exit;
    ExitOutcome out = HandleExit(exit, pio, mmio);
    if (out.stop == StopReason::kTripleFault ||
        out.stop == StopReason::kCrash) {
      out.detail += "\n" + DumpRegisters();
    }
    if (out.stop != StopReason::kNone) {
      out.detail = fmt::format("vCPU {}: {}", index_, out.detail);
      return out;
    }
  }
  return {};
}

void Vcpu::Kick() {
  if (run_.run()) run_.run()->immediate_exit = 1;
}

std::string FormatRegisters(int index, const kvm_regs& r, const kvm_sregs& s) {
  auto seg = [](const char* name, const kvm_segment& g) {
    return fmt::format(
        "  {:3} sel={:#06x} base={:#018x} limit={:#010x} type={} "
        "s={} dpl={} p={} l={} db={} g={}\n",
        name, g.selector, g.base, g.limit, g.type, g.s, g.dpl, g.present, g.l,
        g.db, g.g);
  };
  std::string out = fmt::format(
      "vCPU {} registers:\n"
      "  RIP={:#018x} RSP={:#018x} RFLAGS={:#010x}\n"
      "  RAX={:#018x} RBX={:#018x} RCX={:#018x} RDX={:#018x}\n"
      "  RSI={:#018x} RDI={:#018x} RBP={:#018x}\n"
      "  CR0={:#018x} CR2={:#018x} CR3={:#018x} CR4={:#018x} EFER={:#x}\n",
      index, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi,
      r.rbp, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
  out += seg("CS", s.cs) + seg("SS", s.ss) + seg("DS", s.ds) + seg("TR", s.tr);
  out += fmt::format("  GDT base={:#x} limit={:#x}  IDT base={:#x} limit={:#x}",
                     s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
  return out;
}

std::string Vcpu::DumpRegisters() const {
  auto regs = kvm_->GetRegs(fd_.get());
  auto sregs = kvm_->GetSregs(fd_.get());
  if (!regs || !sregs)
    return fmt::format("vCPU {}: registers unavailable", index_);
  return FormatRegisters(index_, *regs, *sregs);
}

std::string Vcpu::DescribeState() const {
  std::string nmis =
      nmis_injected_ ? fmt::format(", {} NMIs injected", nmis_injected_) : "";
  return fmt::format("vCPU {}: {} exits reached devpass, the last: {}{}\n{}",
                     index_, exits_, exits_ ? DescribeExit(last_exit_) : "none",
                     nmis, DumpRegisters());
}

}  // namespace devpass::vmm
