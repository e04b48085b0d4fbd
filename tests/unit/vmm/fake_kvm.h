#pragma once

// A KvmApi without a kernel: records every call, hands out fake fds, keeps
// vCPU state, and plays a script of exits to vCPU 0's KVM_RUN. Other vCPUs
// (the APs, waiting for SIPI on a real host) block until kicked.

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

#include <unistd.h>

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
  int open_errno = 0;     // OpenKvm fails with this
  int api_version = 12;
  std::map<int, int> caps;  // capability -> value (default 1)
  int vcpu_index_of_fd(int fd) const { return fd - 100; }

  Result<UniqueFd> OpenKvm(const std::filesystem::path&) override {
    Log("OpenKvm");
    if (open_errno) return ErrnoError(open_errno, "fake open failed");
    return UniqueFd(Dup());
  }
  Result<int> ApiVersion(int) override { return api_version; }
  Result<int> CheckExtension(int, int cap) override {
    auto it = caps.find(cap);
    if (it != caps.end()) return it->second;
    return cap == KVM_CAP_MAX_VCPUS ? 64 : 1;
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
    return UniqueFd(Dup());
  }
  Status SetTssAddr(int, uint64_t a) override { return Log("SetTssAddr " + Hex(a)); }
  Status SetIdentityMapAddr(int, uint64_t a) override {
    return Log("SetIdentityMapAddr " + Hex(a));
  }
  Status CreateIrqchip(int) override { return Log("CreateIrqchip"); }
  Status CreatePit2(int) override { return Log("CreatePit2"); }
  Status SetUserMemoryRegion(int, const kvm_userspace_memory_region& r) override {
    std::lock_guard lock(mu_);
    regions.push_back(r);
    calls.push_back("SetUserMemoryRegion " + std::to_string(r.slot) + " " +
                    Hex(r.guest_phys_addr) + " " + Hex(r.memory_size));
    return Ok();
  }
  Status IrqLine(int, uint32_t irq, bool level) override {
    std::lock_guard lock(mu_);
    irq_lines.push_back({irq, level});
    return Ok();
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
  Status SetMsrs(int, const std::vector<Msr>&) override { return Log("SetMsrs"); }
  Result<kvm_lapic_state> GetLapic(int) override { return kvm_lapic_state{}; }
  Status SetLapic(int, const kvm_lapic_state&) override { return Ok(); }

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
  static int Dup() { return ::dup(2); }

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
inline FakeKvm::Step Exit(uint32_t reason) {
  return [=](kvm_run* run) { run->exit_reason = reason; };
}

}  // namespace devpass::vmm::testing
