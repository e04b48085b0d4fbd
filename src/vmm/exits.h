#pragma once

// vCPU exits as plain values (the free-function style of Firecracker's
// vmm/src/vstate/vcpu): DecodeExit turns the kernel's kvm_run into a
// VcpuExit, HandleExit dispatches it to the port and MMIO address spaces and
// says whether the vCPU goes on. Unit tests feed HandleExit synthetic exits.

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "pci/address_space.h"

namespace devpass::vmm {

struct ExitIo {
  bool in = false;
  uint16_t port = 0;
  uint8_t size = 1;         // bytes per access
  uint32_t count = 1;       // >1 for string I/O (rep ins/outs)
  std::span<uint8_t> data;  // count * size bytes inside kvm_run
};
struct ExitMmio {
  bool write = false;
  uint64_t addr = 0;
  std::span<uint8_t> data;  // kvm_run.mmio.data[0..len)
};
struct ExitHlt {};
struct ExitShutdown {};  // triple fault (or INIT with no one to catch it)
struct ExitFailEntry {
  uint64_t hardware_reason = 0;
  uint32_t cpu = 0;
};
struct ExitSystemEvent {
  uint32_t type = 0;  // KVM_SYSTEM_EVENT_SHUTDOWN / _RESET / _CRASH
};
struct ExitInternalError {
  uint32_t suberror = 0;
};
struct ExitInterrupted {};  // KVM_EXIT_INTR: a signal kicked the vCPU out
struct ExitUnknown {
  uint32_t reason = 0;
};

using VcpuExit = std::variant<ExitIo, ExitMmio, ExitHlt, ExitShutdown,
                              ExitFailEntry, ExitSystemEvent, ExitInternalError,
                              ExitInterrupted, ExitUnknown>;

// `run` is the mapped kvm_run of `mapping_size` bytes; an I/O data offset
// outside it decodes as ExitUnknown rather than touching foreign memory.
VcpuExit DecodeExit(kvm_run* run, size_t mapping_size);

// One line for the user: "port 0x3f8 out (1 byte)", "MMIO write 0xfee000b0
// (4 bytes)", "HLT". For the report of a guest stopped from the host, where
// the last exit says what the guest was doing when it stopped making progress.
std::string DescribeExit(const VcpuExit& exit);

// Why a vCPU (and so the VM) stopped.
enum class StopReason {
  kNone,         // keep running
  kPowerOff,     // the guest wrote the power-off port
  kReset,        // i8042 reset or KVM reset event: reboot or panic=-1
  kHalted,       // HLT reached userspace (no in-kernel irqchip would)
  kTripleFault,  // KVM_EXIT_SHUTDOWN
  kCrash,        // FAIL_ENTRY, INTERNAL_ERROR, unknown exit, crash event
  kSignal,       // SIGINT/SIGTERM on the host
};
const char* StopReasonName(StopReason r);

struct ExitOutcome {
  StopReason stop = StopReason::kNone;
  std::string detail;  // for the user, when stopping
};

ExitOutcome HandleExit(const VcpuExit& exit, const pci::AddressSpace& pio,
                       const pci::AddressSpace& mmio);

}  // namespace devpass::vmm
