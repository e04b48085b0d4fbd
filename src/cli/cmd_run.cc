// devpass run --kernel BZIMAGE [...]: boots a Linux guest in devpass's own
// KVM VMM (module 3), console on this terminal. The work is in src/vmm.
//
// Exit status: 0 the guest powered off; 1 devpass failed (setup, KVM); 2 bad
// usage; 3 the guest reset (reboot, or a kernel panic: panic=-1 turns it into
// a reset) with --on-reboot exit; 4 the guest crashed (triple fault, KVM
// entry failure or internal error; registers are printed); 130/143 stopped
// by SIGINT/SIGTERM. SIGUSR1 injects an NMI into every vCPU (docs/vmm.md).

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <iostream>
#include <memory>

#include "assign/ownership.h"
#include "assign/passthrough.h"
#include "cli/commands.h"
#include "cli/hiding_json.h"
#include "cli/output.h"
#include "hiding/kernel.h"
#include "vfio/vfio_api.h"
#include "vmm/console.h"
#include "vmm/vm.h"

namespace devpass::cli {
namespace {

inline constexpr int kExitGuestReset = 3;
inline constexpr int kExitGuestCrashed = 4;
inline constexpr int kExitSigint = 130;
inline constexpr int kExitSigterm = 143;

struct RunArgs {
  std::string kernel;
  std::string initrd;
  std::string cmdline;
  std::string mem = "512M";
  int cpus = 1;
  std::string name = "guest";
  bool hugepages = false;
  bool thp = true;  // as QEMU does; --no-thp turns it off
  std::string on_reboot = "exit";
  std::vector<std::string> devices;
  bool no_manage = false;
  bool force = false;
};

// "512M", "2G", "1024" (MiB), "4096K".
Result<uint64_t> ParseSize(const std::string& text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value);
  uint64_t unit = vmm::kMiB;
  if (ec == std::errc() && p != text.data()) {
    std::string suffix(p, end);
    if (suffix == "K" || suffix == "k")
      unit = vmm::kKiB;
    else if (suffix == "G" || suffix == "g")
      unit = vmm::kGiB;
    else if (suffix.empty() || suffix == "M" || suffix == "m")
      unit = vmm::kMiB;
    else
      value = 0;
  }
  if (ec != std::errc() || value == 0 || value > (1ull << 50) / unit) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("--mem {}: give a size like 512M or 2G", text));
  }
  return value * unit;
}

// Passthrough state of one run: ownership (ledger) first, VFIO after; torn
// down in reverse, so devices are given back only once VFIO let go of them.
struct Assignment {
  std::optional<assign::Claim> claim;
  std::unique_ptr<assign::Passthrough> passthrough;
};

void Say(const std::string& who, const std::string& line) {
  std::cerr << who << line << "\n";
}

// Claims and opens the --device devices. Empty when there are none.
Result<Assignment> Assign(const RunArgs& a, const Root& root,
                          hiding::Kernel& kernel) {
  Assignment out;
  if (a.devices.empty()) return out;
  std::vector<PciAddress> addresses;
  for (const std::string& text : a.devices) {
    DP_ASSIGN_OR_RETURN(PciAddress addr, PciAddress::Parse(text));
    addresses.push_back(addr);
  }
  const std::string who = fmt::format("devpass: {}: ", a.name);
  assign::ClaimOptions options;
  options.manage = !a.no_manage;
  options.force = a.force;
  DP_ASSIGN_OR_RETURN(assign::Claim claim,
                      assign::Claim::Acquire(root, kernel, CliHiderConfig(),
                                             addresses, a.name, options));
  for (const auto& note : claim.notes()) Say(who, note);
  for (const auto& d : claim.devices()) Say(who, d.message);
  out.claim.emplace(std::move(claim));
  DP_ASSIGN_OR_RETURN(out.passthrough,
                      assign::Passthrough::Open(
                          vfio::NewKernelVfioApi(), root, addresses,
                          [who](const std::string& line) { Say(who, line); }));
  return out;
}

void GiveBack(Assignment& assignment, const std::string& who) {
  assignment.passthrough.reset();
  if (!assignment.claim) return;
  auto report = assignment.claim->Release();
  if (!report) {
    Say(who, report.error().message);
    return;
  }
  for (const auto& d : report->devices) {
    if (!d.message.empty()) Say(who, d.message);
  }
}

int RunGuest(const RunArgs& a, Globals& g, Assignment& assignment);

int Run(const RunArgs& a, Globals& g) {
  const Root root = g.root();
  hiding::RealKernel kernel(root);
  auto assigned = Assign(a, root, kernel);
  if (!assigned) return ReportError(assigned.error(), g.json);
  const int status = RunGuest(a, g, *assigned);
  GiveBack(*assigned, fmt::format("devpass: {}: ", a.name));
  return status;
}

int RunGuest(const RunArgs& a, Globals& g, Assignment& assignment) {
  vmm::VmConfig config;
  config.kernel = a.kernel;
  if (!a.initrd.empty()) config.initrd = a.initrd;
  config.cmdline = vmm::kDefaultCmdline;
  if (!a.cmdline.empty()) config.cmdline += " " + a.cmdline;
  auto mem = ParseSize(a.mem);
  if (!mem) return ReportError(mem.error(), g.json);
  config.mem_bytes = *mem;
  config.cpus = a.cpus;
  config.name = a.name;
  config.backing = a.hugepages ? vmm::Backing::kHugetlb
                   : a.thp     ? vmm::Backing::kThp
                               : vmm::Backing::kSmallPages;
  config.console_out = [](uint8_t c) {
    ssize_t n;
    do {
      n = ::write(STDOUT_FILENO, &c, 1);
    } while (n < 0 && errno == EINTR);
  };
  const bool restart = a.on_reboot == "restart";
  const Root root = g.root();
  auto kvm = vmm::NewSystemKvmApi();
  for (;;) {
    auto vm = vmm::Vm::Create(*kvm, root, config);
    if (!vm) return ReportError(vm.error(), g.json);
    if (assignment.passthrough) {
      if (auto s = assignment.passthrough->Attach(**vm); !s) {
        return ReportError(s.error(), g.json);
      }
    }
    vmm::VmStop stop = vmm::RunAttached(**vm, vmm::AttachOptions{});
    if (assignment.passthrough) assignment.passthrough->Detach();
    vm->reset();  // tear down before a restart or the report
    const std::string who = fmt::format("devpass: {}: ", a.name);
    switch (stop.reason) {
      case vmm::StopReason::kPowerOff:
      case vmm::StopReason::kHalted:
        std::cerr << who << stop.detail << "\n";
        return kExitOk;
      case vmm::StopReason::kReset:
        if (restart) {
          std::cerr << who << stop.detail
                    << "; restarting (--on-reboot restart)\n";
          continue;
        }
        std::cerr << who << "guest kernel panicked or rebooted: " << stop.detail
                  << " (--on-reboot restart boots it again)\n";
        return kExitGuestReset;
      case vmm::StopReason::kSignal:
        std::cerr << who << stop.detail << "\n";
        return stop.detail.find("SIGTERM") != std::string::npos ? kExitSigterm
                                                                : kExitSigint;
      case vmm::StopReason::kTripleFault:
      case vmm::StopReason::kCrash:
      case vmm::StopReason::kNone:
        std::cerr << who << "guest crashed: " << stop.detail << "\n";
        return kExitGuestCrashed;
    }
  }
}

}  // namespace

void RegisterRunCommand(CLI::App& app, Globals& g) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand(
      "run",
      "Boot a Linux guest in devpass's own KVM VMM (console on this terminal; "
      "Ctrl-A x quits). Exit 0 when the guest powers off, 3 when it reboots or "
      "panics, 4 when it crashes. SIGUSR1 injects an NMI into the guest (a "
      "Linux guest with unknown_nmi_panic prints where it hung)");
  run->add_option("--kernel", args->kernel,
                  "Linux bzImage (x86-64, boot protocol 2.12+)")
      ->required()
      ->type_name("BZIMAGE");
  run->add_option("--initrd", args->initrd,
                  "initramfs loaded below initrd_addr_max")
      ->type_name("FILE");
  run->add_option("--cmdline", args->cmdline,
                  fmt::format("kernel command line, after devpass's \"{}\"",
                              vmm::kDefaultCmdline))
      ->type_name("STR");
  run->add_option("--mem", args->mem, "guest RAM (512M, 2G)")
      ->capture_default_str();
  run->add_option("--cpus", args->cpus, "vCPUs (1-32)")
      ->check(CLI::Range(1, 32))
      ->capture_default_str();
  run->add_option("--name", args->name, "name in devpass's messages")
      ->capture_default_str();
  auto* huge =
      run->add_flag("--hugepages", args->hugepages,
                    "back guest RAM with hugetlbfs pages (MAP_HUGETLB)");
  // The default since the benchmark (docs/performance.md): guest RAM in 4 KiB
  // pages costs a nested or IOMMU-heavy guest dearly, and Linux's default
  // THP defrag policy ("madvise") only compacts for madvised memory.
  run->add_flag("--thp,!--no-thp", args->thp,
                "transparent huge pages for guest RAM (madvise MADV_HUGEPAGE; "
                "the default, as in QEMU); --no-thp: 4 KiB pages only "
                "(MADV_NOHUGEPAGE)")
      ->excludes(huge);
  run->add_option("--on-reboot", args->on_reboot,
                  "when the guest resets: exit (status 3) or restart it")
      ->check(CLI::IsMember({"exit", "restart"}))
      ->capture_default_str();
  run->add_option(
         "--device", args->devices,
         "give this host PCI device to the guest (repeatable); hidden on "
         "vfio-pci for the run and given back afterwards unless --no-manage")
      ->type_name("BDF");
  run->add_flag(
      "--no-manage", args->no_manage,
      "refuse a --device that is not hidden already instead of hiding it "
      "for the run (libvirt's managed='no')");
  run->add_flag(
      "--force", args->force,
      "hide a --device the host depends on (boot GPU, root disk, default "
      "route network); IOMMU group viability is never overridden");
  run->callback([&g, args] { g.exit_code = Run(*args, g); });
}

}  // namespace devpass::cli
