#include "host/readiness.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <optional>

#include "base/fs.h"

namespace devpass::host {
namespace {

// Intel VT-d Extended Capability Register bit 3: Interrupt Remapping
// support (ecap_ir_support() in include/linux/intel-iommu.h; VT-d spec
// §11.4.3). Exposed as hex in sys/class/iommu/dmarN/intel-iommu/ecap.
constexpr uint64_t kVtdEcapInterruptRemapping = uint64_t{1} << 3;

constexpr std::string_view kIommuFix =
    "enable VT-d (Intel) or AMD-Vi/IOMMU (AMD) in the firmware setup; on Intel "
    "also add intel_iommu=on to the kernel command line; then reboot";

enum class CpuVendor { kIntel, kAmd, kOther };

struct HostFacts {
  std::string cpuinfo;
  std::vector<std::string> cpu_flags;
  CpuVendor vendor = CpuVendor::kOther;
  std::vector<std::string> cmdline;
  bool has_dmar = false;
  bool has_ivrs = false;
  bool has_groups = false;
};

std::vector<std::string> FirstCpuField(const std::string& cpuinfo,
                                       std::string_view key) {
  size_t pos = 0;
  while (pos < cpuinfo.size()) {
    size_t nl = cpuinfo.find('\n', pos);
    std::string_view line(
        cpuinfo.data() + pos,
        (nl == std::string::npos ? cpuinfo.size() : nl) - pos);
    pos = nl == std::string::npos ? cpuinfo.size() : nl + 1;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    if (Trim(line.substr(0, colon)) == key)
      return SplitWords(line.substr(colon + 1));
  }
  return {};
}

bool Has(const std::vector<std::string>& words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

// Value of "key=value" on the kernel command line (last one wins, as for
// the kernel's own parsing); nullopt when absent.
std::optional<std::string> CmdlineValue(const std::vector<std::string>& words,
                                        std::string_view key) {
  std::optional<std::string> value;
  for (const auto& w : words) {
    if (w == "--") break;  // what follows is for init
    if (w.size() > key.size() && w.compare(0, key.size(), key) == 0 &&
        w[key.size()] == '=') {
      value = w.substr(key.size() + 1);
    }
  }
  return value;
}

bool ListHas(std::string_view csv, std::string_view item) {
  while (!csv.empty()) {
    size_t comma = csv.find(',');
    if (csv.substr(0, comma) == item) return true;
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  return false;
}

HostFacts Gather(const Root& root) {
  HostFacts f;
  f.cpuinfo = ReadFile(root.Proc("cpuinfo")).value_or("");
  f.cpu_flags = FirstCpuField(f.cpuinfo, "flags");
  auto vendor = FirstCpuField(f.cpuinfo, "vendor_id");
  if (Has(vendor, "GenuineIntel")) f.vendor = CpuVendor::kIntel;
  if (Has(vendor, "AuthenticAMD") || Has(vendor, "HygonGenuine"))
    f.vendor = CpuVendor::kAmd;
  f.cmdline = SplitWords(ReadFile(root.Proc("cmdline")).value_or(""));
  f.has_dmar = Exists(root.Sys("firmware/acpi/tables/DMAR"));
  f.has_ivrs = Exists(root.Sys("firmware/acpi/tables/IVRS"));
  f.has_groups = !ListDir(root.Sys("kernel/iommu_groups")).empty();
  return f;
}

// The Intel path applies when the firmware describes VT-d, or, without any
// IOMMU table, when the CPU is Intel (the table may just be disabled).
bool IsIntelPlatform(const HostFacts& f) {
  return f.has_dmar || (!f.has_ivrs && f.vendor == CpuVendor::kIntel);
}

Finding Make(std::string_view id, std::string title, FindingStatus status,
             std::string detail, std::string fix = "") {
  return Finding{std::string(id), std::move(title), status, std::move(detail),
                 std::move(fix)};
}

Finding CheckCpu(const Root& root, const HostFacts& f) {
  std::string title = "CPU virtualization";
  if (Has(f.cpu_flags, "vmx")) {
    return Make(kCheckCpuVirtualization, title, FindingStatus::kPass,
                "Intel VT-x (vmx flag)");
  }
  if (Has(f.cpu_flags, "svm")) {
    return Make(kCheckCpuVirtualization, title, FindingStatus::kPass,
                "AMD-V (svm flag)");
  }
  std::string fix =
      "enable Intel VT-x / AMD-V (SVM) in the firmware setup; in a VM, enable "
      "nested virtualization on the outer host";
  if (f.cpu_flags.empty()) {
    return Make(
        kCheckCpuVirtualization, title, FindingStatus::kWarn,
        fmt::format("no CPU flags in {}", root.Display(root.Proc("cpuinfo"))),
        fix);
  }
  // Some hypervisors provide KVM to their guests without exposing vmx/svm
  // (e.g. PVM); the device node is what counts then.
  if (Exists(root.Dev("kvm"))) {
    return Make(
        kCheckCpuVirtualization, title, FindingStatus::kWarn,
        "the CPU flags show neither vmx nor svm, but /dev/kvm exists (KVM is "
        "provided another way, e.g. by the outer hypervisor)",
        "none needed if guests start; otherwise " + fix);
  }
  return Make(kCheckCpuVirtualization, title, FindingStatus::kFail,
              "the CPU flags show neither vmx (Intel VT-x) nor svm (AMD-V)",
              fix);
}

Finding CheckKvm(const Root& root, const HostFacts& f) {
  std::string title = "/dev/kvm";
  if (Exists(root.Dev("kvm"))) {
    return Make(kCheckKvmDevice, title, FindingStatus::kPass, "present");
  }
  std::string module = f.vendor == CpuVendor::kAmd ? "modprobe kvm_amd"
                       : f.vendor == CpuVendor::kIntel
                           ? "modprobe kvm_intel"
                           : "modprobe kvm_intel (Intel) or kvm_amd (AMD)";
  return Make(
      kCheckKvmDevice, title, FindingStatus::kFail,
      "missing: KVM is not loaded",
      fmt::format("{}; if that fails, enable VT-x/AMD-V in the firmware setup",
                  module));
}

Finding CheckFirmware(const HostFacts& f) {
  std::string title = "IOMMU in firmware (ACPI DMAR/IVRS)";
  if (f.has_dmar) {
    return Make(kCheckIommuFirmware, title, FindingStatus::kPass,
                "Intel VT-d (ACPI DMAR table)");
  }
  if (f.has_ivrs) {
    return Make(kCheckIommuFirmware, title, FindingStatus::kPass,
                "AMD-Vi (ACPI IVRS table)");
  }
  return Make(
      kCheckIommuFirmware, title, FindingStatus::kFail,
      "no DMAR or IVRS ACPI table: the firmware does not describe an IOMMU",
      "enable VT-d / AMD-Vi in the firmware setup (often named 'VT-d', "
      "'IOMMU' or 'AMD-Vi'), then reboot");
}

Finding CheckCmdline(const HostFacts& f) {
  std::string title = "IOMMU on the kernel command line";
  if (auto iommu = CmdlineValue(f.cmdline, "iommu");
      iommu && ListHas(*iommu, "off")) {
    return Make(kCheckIommuCmdline, title, FindingStatus::kFail,
                "the kernel command line has iommu=off",
                "remove iommu=off from the kernel command line and reboot");
  }
  if (IsIntelPlatform(f)) {
    auto v = CmdlineValue(f.cmdline, "intel_iommu");
    if (v && ListHas(*v, "off")) {
      return Make(
          kCheckIommuCmdline, title, FindingStatus::kFail,
          "the kernel command line has intel_iommu=off",
          "replace intel_iommu=off with intel_iommu=on on the kernel command "
          "line and reboot");
    }
    if (v && ListHas(*v, "on")) {
      return Make(kCheckIommuCmdline, title, FindingStatus::kPass,
                  "intel_iommu=on");
    }
    // Kernels built with CONFIG_INTEL_IOMMU_DEFAULT_ON enable it without the
    // parameter; populated IOMMU groups prove it is on.
    if (f.has_groups) {
      return Make(kCheckIommuCmdline, title, FindingStatus::kPass,
                  "no intel_iommu=on, but the kernel enabled VT-d by default "
                  "(IOMMU groups exist)");
    }
    return Make(
        kCheckIommuCmdline, title, FindingStatus::kFail,
        "Intel platform without intel_iommu=on, and the kernel did not enable "
        "VT-d by default",
        "add intel_iommu=on to the kernel command line and reboot (Debian: "
        "GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub)");
  }
  if (auto v = CmdlineValue(f.cmdline, "amd_iommu"); v && ListHas(*v, "off")) {
    return Make(kCheckIommuCmdline, title, FindingStatus::kFail,
                "the kernel command line has amd_iommu=off",
                "remove amd_iommu=off from the kernel command line and reboot");
  }
  return Make(
      kCheckIommuCmdline, title, FindingStatus::kPass,
      f.vendor == CpuVendor::kAmd
          ? "AMD: the kernel enables AMD-Vi by default; no parameter needed"
          : "no parameter disables the IOMMU");
}

Finding CheckPassthroughMode(const HostFacts& f) {
  std::string title = "IOMMU passthrough for host devices (iommu=pt)";
  auto iommu = CmdlineValue(f.cmdline, "iommu");
  auto pt = CmdlineValue(f.cmdline, "iommu.passthrough");
  if ((iommu && ListHas(*iommu, "pt")) ||
      (pt && (*pt == "1" || *pt == "y" || *pt == "on"))) {
    return Make(kCheckIommuPassthrough, title, FindingStatus::kPass,
                "iommu=pt");
  }
  return Make(
      kCheckIommuPassthrough, title, FindingStatus::kWarn,
      "host devices use IOMMU translation (DMA remapping overhead for the "
      "host)",
      "add iommu=pt to the kernel command line and reboot (recommended; "
      "assigned devices stay isolated)");
}

Finding CheckGroups(const Root& root, const HostFacts& f) {
  std::string title = "IOMMU groups";
  if (f.has_groups) {
    size_t n = ListDir(root.Sys("kernel/iommu_groups")).size();
    return Make(kCheckIommuGroups, title, FindingStatus::kPass,
                fmt::format("{} groups", n));
  }
  return Make(kCheckIommuGroups, title, FindingStatus::kFail,
              fmt::format("{} is empty or missing: the IOMMU is off",
                          root.Display(root.Sys("kernel/iommu_groups"))),
              std::string(kIommuFix));
}

// vfio-pci can be loaded on demand when the running kernel ships it.
bool VfioPciAvailable(const Root& root) {
  std::string release =
      Trim(ReadFile(root.Proc("sys/kernel/osrelease")).value_or(""));
  if (release.empty()) return false;
  for (const char* file : {"modules.dep", "modules.builtin"}) {
    std::string text =
        ReadFile(root.Path(fmt::format("lib/modules/{}/{}", release, file)))
            .value_or("");
    if (text.find("vfio-pci.ko") != std::string::npos ||
        text.find("vfio_pci.ko") != std::string::npos) {
      return true;
    }
  }
  return false;
}

bool VfioPciLoaded(const Root& root) {
  return Exists(root.Sys("module/vfio_pci")) ||
         Exists(root.Sys("bus/pci/drivers/vfio-pci"));
}

Finding CheckVfioDevice(const Root& root) {
  std::string title = "/dev/vfio/vfio";
  if (Exists(root.Dev("vfio/vfio"))) {
    return Make(kCheckVfioDevice, title, FindingStatus::kPass, "present");
  }
  if (VfioPciAvailable(root)) {
    return Make(kCheckVfioDevice, title, FindingStatus::kWarn,
                "missing; it appears when the vfio modules load, which devpass "
                "hide does",
                "modprobe vfio-pci (or let devpass hide load it)");
  }
  return Make(
      kCheckVfioDevice, title, FindingStatus::kFail,
      "missing, and the running kernel has no vfio-pci module",
      "install a kernel built with CONFIG_VFIO and CONFIG_VFIO_PCI (Debian's "
      "linux-image packages have them), boot it, then modprobe vfio-pci");
}

Finding CheckVfioPci(const Root& root) {
  std::string title = "vfio-pci driver";
  if (VfioPciLoaded(root)) {
    return Make(kCheckVfioPciModule, title, FindingStatus::kPass, "loaded");
  }
  if (VfioPciAvailable(root)) {
    return Make(kCheckVfioPciModule, title, FindingStatus::kWarn,
                "available but not loaded; devpass hide will load it",
                "modprobe vfio-pci (optional: devpass hide loads it)");
  }
  return Make(
      kCheckVfioPciModule, title, FindingStatus::kFail,
      "not loaded, and not in the running kernel's modules.dep or "
      "modules.builtin",
      "install a kernel built with CONFIG_VFIO_PCI (Debian's linux-image "
      "packages have it) and boot it");
}

// Interrupt remapping keeps an assigned device from forging interrupts into
// the host; VFIO's type1 IOMMU refuses to attach a group without it unless
// allow_unsafe_interrupts is set. Detection: Intel units report IR in bit 3
// of the VT-d ecap register (sysfs intel-iommu/ecap); AMD-Vi units always
// implement interrupt remapping, so an IVRS table is taken as IR present.
// (The kernel log line "Enabled IRQ remapping" would be authoritative but
// needs privileges and may have rotated away.)
Finding CheckInterruptRemapping(const Root& root, const HostFacts& f) {
  std::string title = "interrupt remapping";
  std::string unsafe = Trim(
      ReadFile(
          root.Sys(
              "module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"))
          .value_or(""));
  bool unsafe_allowed = unsafe == "Y" || unsafe == "1";
  auto cmd_intremap = CmdlineValue(f.cmdline, "intremap");
  bool ir_disabled = (cmd_intremap && ListHas(*cmd_intremap, "off")) ||
                     Has(f.cmdline, "nointremap");

  std::optional<bool> ir;  // nullopt: no IOMMU to ask
  std::string how;
  int units = 0, with_ir = 0;
  for (const auto& unit : ListDir(root.Sys("class/iommu"))) {
    auto text = ReadFile(
        root.Sys(fmt::format("class/iommu/{}/intel-iommu/ecap", unit)));
    if (!text) continue;
    std::string hex = Trim(*text);
    std::string_view v = hex;
    if (v.size() > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X'))
      v.remove_prefix(2);
    uint64_t ecap = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), ecap, 16);
    if (ec != std::errc() || ptr != v.data() + v.size()) continue;
    ++units;
    if (ecap & kVtdEcapInterruptRemapping) ++with_ir;
  }
  if (units > 0) {
    ir = with_ir == units;
    how = fmt::format(
        "{} of {} VT-d units report interrupt remapping (ecap bit 3)", with_ir,
        units);
  } else if (f.has_ivrs && f.has_groups) {
    ir = true;
    how = "AMD-Vi implements interrupt remapping";
  }
  if (ir && *ir && ir_disabled) {
    ir = false;
    how += ", but the kernel command line disables it";
  }
  if (unsafe_allowed) {
    return Make(
        kCheckInterruptRemapping, title, FindingStatus::kWarn,
        fmt::format(
            "vfio_iommu_type1 allow_unsafe_interrupts=Y: assigned devices "
            "can inject interrupts into the host{}",
            how.empty() ? "" : " (" + how + ")"),
        "remove allow_unsafe_interrupts=1 from /etc/modprobe.d once interrupt "
        "remapping works, then reload vfio_iommu_type1");
  }
  if (ir && *ir)
    return Make(kCheckInterruptRemapping, title, FindingStatus::kPass, how);
  if (ir) {
    return Make(
        kCheckInterruptRemapping, title, FindingStatus::kFail,
        how + "; VFIO will refuse to attach devices",
        ir_disabled
            ? "remove intremap=off / nointremap from the kernel command line "
              "and reboot"
            : "enable interrupt remapping / x2APIC in the firmware setup, or "
              "(unsafe) set vfio_iommu_type1 allow_unsafe_interrupts=1");
  }
  return Make(kCheckInterruptRemapping, title, FindingStatus::kFail,
              "no active IOMMU, so no interrupt remapping",
              std::string(kIommuFix));
}

Finding CheckDriverOverride(const Root& root) {
  std::string title = "driver_override support";
  auto devices = ListDir(root.Sys("bus/pci/devices"));
  for (const auto& d : devices) {
    if (Exists(
            root.Sys(fmt::format("bus/pci/devices/{}/driver_override", d)))) {
      return Make(kCheckDriverOverride, title, FindingStatus::kPass,
                  "PCI devices have driver_override");
    }
  }
  if (devices.empty()) {
    return Make(kCheckDriverOverride, title, FindingStatus::kWarn,
                "no PCI devices to look at",
                "none: nothing to assign on this host");
  }
  return Make(
      kCheckDriverOverride, title, FindingStatus::kFail,
      "PCI devices have no driver_override attribute (kernel older than 3.16)",
      "boot a kernel newer than 3.16 (Debian 12's 6.1 has it)");
}

}  // namespace

std::string_view FindingStatusName(FindingStatus status) {
  switch (status) {
    case FindingStatus::kPass:
      return "PASS";
    case FindingStatus::kWarn:
      return "WARN";
    case FindingStatus::kFail:
      return "FAIL";
  }
  return "?";
}

std::vector<Finding> CheckHost(const Root& root) {
  HostFacts f = Gather(root);
  std::vector<Finding> out = {CheckCpu(root, f), CheckKvm(root, f),
                              CheckFirmware(f), CheckCmdline(f)};
  // iommu=pt tunes an active IOMMU; while it is off the groups finding
  // already says how to turn it on, and a pt warning would only distract.
  if (f.has_groups) out.push_back(CheckPassthroughMode(f));
  for (Finding finding :
       {CheckGroups(root, f), CheckVfioDevice(root), CheckVfioPci(root),
        CheckInterruptRemapping(root, f), CheckDriverOverride(root)}) {
    out.push_back(std::move(finding));
  }
  return out;
}

bool AnyFailed(const std::vector<Finding>& findings) {
  return std::any_of(findings.begin(), findings.end(), [](const Finding& f) {
    return f.status == FindingStatus::kFail;
  });
}

}  // namespace devpass::host
