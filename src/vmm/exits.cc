#include "vmm/exits.h"

#include <fmt/format.h>

namespace devpass::vmm {

const char* StopReasonName(StopReason r) {
  switch (r) {
    case StopReason::kNone:
      return "running";
    case StopReason::kPowerOff:
      return "power-off";
    case StopReason::kReset:
      return "reset";
    case StopReason::kHalted:
      return "halted";
    case StopReason::kTripleFault:
      return "triple fault";
    case StopReason::kCrash:
      return "crash";
    case StopReason::kSignal:
      return "signal";
  }
  return "?";
}

std::string DescribeExit(const VcpuExit& exit) {
  struct Describe {
    std::string operator()(const ExitIo& e) const {
      return fmt::format("port {:#x} {} ({} byte{}{})", e.port,
                         e.in ? "in" : "out", e.size, e.size == 1 ? "" : "s",
                         e.count > 1 ? fmt::format(", x{}", e.count) : "");
    }
    std::string operator()(const ExitMmio& e) const {
      return fmt::format("MMIO {} {:#x} ({} bytes)", e.write ? "write" : "read",
                         e.addr, e.data.size());
    }
    std::string operator()(const ExitHlt&) const { return "HLT"; }
    std::string operator()(const ExitShutdown&) const {
      return "shutdown (triple fault)";
    }
    std::string operator()(const ExitFailEntry& e) const {
      return fmt::format("failed entry (hardware reason {:#x})",
                         e.hardware_reason);
    }
    std::string operator()(const ExitSystemEvent& e) const {
      return fmt::format("system event {}", e.type);
    }
    std::string operator()(const ExitInternalError& e) const {
      return fmt::format("internal error {}", e.suberror);
    }
    std::string operator()(const ExitInterrupted&) const {
      return "interrupted by a signal";
    }
    std::string operator()(const ExitUnknown& e) const {
      return fmt::format("unknown exit reason {}", e.reason);
    }
  };
  return std::visit(Describe{}, exit);
}

VcpuExit DecodeExit(kvm_run* run, size_t mapping_size) {
  auto* base = reinterpret_cast<uint8_t*>(run);
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      ExitIo io;
      io.in = run->io.direction == KVM_EXIT_IO_IN;
      io.port = run->io.port;
      io.size = run->io.size;
      io.count = run->io.count;
      const uint64_t len = static_cast<uint64_t>(io.size) * io.count;
      if (io.size == 0 || run->io.data_offset > mapping_size ||
          len > mapping_size - run->io.data_offset) {
        return ExitUnknown{run->exit_reason};
      }
      io.data = std::span<uint8_t>(base + run->io.data_offset, len);
      return io;
    }
    case KVM_EXIT_MMIO: {
      ExitMmio m;
      m.write = run->mmio.is_write != 0;
      m.addr = run->mmio.phys_addr;
      m.data = std::span<uint8_t>(run->mmio.data,
                                  std::min<uint32_t>(run->mmio.len, 8));
      return m;
    }
    case KVM_EXIT_HLT:
      return ExitHlt{};
    case KVM_EXIT_SHUTDOWN:
      return ExitShutdown{};
    case KVM_EXIT_FAIL_ENTRY:
      return ExitFailEntry{run->fail_entry.hardware_entry_failure_reason,
                           run->fail_entry.cpu};
    case KVM_EXIT_SYSTEM_EVENT:
      return ExitSystemEvent{run->system_event.type};
    case KVM_EXIT_INTERNAL_ERROR:
      return ExitInternalError{run->internal.suberror};
    case KVM_EXIT_INTR:
      return ExitInterrupted{};
    default:
      return ExitUnknown{run->exit_reason};
  }
}

namespace {

struct Handler {
  const pci::AddressSpace& pio;
  const pci::AddressSpace& mmio;

  ExitOutcome operator()(const ExitIo& io) const {
    for (uint32_t i = 0; i < io.count; ++i) {
      auto chunk = io.data.subspan(static_cast<size_t>(i) * io.size, io.size);
      if (io.in) {
        pio.Read(io.port, chunk);  // unmapped ports read all ones
      } else {
        pio.Write(io.port, chunk);
      }
    }
    return {};
  }
  ExitOutcome operator()(const ExitMmio& m) const {
    if (m.write) {
      mmio.Write(m.addr, m.data);
    } else {
      mmio.Read(m.addr, m.data);
    }
    return {};
  }
  ExitOutcome operator()(const ExitHlt&) const {
    return {StopReason::kHalted, "the guest halted"};
  }
  ExitOutcome operator()(const ExitShutdown&) const {
    return {StopReason::kTripleFault,
            "the guest triple-faulted (KVM_EXIT_SHUTDOWN)"};
  }
  ExitOutcome operator()(const ExitFailEntry& f) const {
    return {
        StopReason::kCrash,
        fmt::format("KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, "
                    "hardware reason {:#x} on host CPU {}): the initial CPU "
                    "state is invalid; this is a devpass bug",
                    f.hardware_reason, f.cpu)};
  }
  ExitOutcome operator()(const ExitSystemEvent& e) const {
    switch (e.type) {
      case KVM_SYSTEM_EVENT_SHUTDOWN:
        return {StopReason::kPowerOff, "the guest shut down"};
      case KVM_SYSTEM_EVENT_RESET:
        return {StopReason::kReset, "the guest reset"};
      default:
        return {StopReason::kCrash,
                fmt::format("the guest crashed (KVM system event {})", e.type)};
    }
  }
  ExitOutcome operator()(const ExitInternalError& e) const {
    return {StopReason::kCrash,
            fmt::format("KVM internal error (suberror {}): KVM could not "
                        "emulate an instruction of the guest",
                        e.suberror)};
  }
  ExitOutcome operator()(const ExitInterrupted&) const { return {}; }
  ExitOutcome operator()(const ExitUnknown& u) const {
    return {StopReason::kCrash,
            fmt::format("unexpected vCPU exit (reason {}): devpass does not "
                        "handle it",
                        u.reason)};
  }
};

}  // namespace

ExitOutcome HandleExit(const VcpuExit& exit, const pci::AddressSpace& pio,
                       const pci::AddressSpace& mmio) {
  return std::visit(Handler{pio, mmio}, exit);
}

}  // namespace devpass::vmm
