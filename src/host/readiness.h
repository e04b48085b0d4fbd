#pragma once

// `devpass check`: is this host ready for VFIO device assignment? Each check
// is one Finding with a concrete fix. Everything is read from files under the
// root (proc/cpuinfo, proc/cmdline, sys/firmware/acpi/tables, sys/kernel/
// iommu_groups, sys/class/iommu, sys/module, dev, lib/modules), so the checks
// run unchanged against fake trees.

#include <string>
#include <string_view>
#include <vector>

#include "base/root.h"

namespace devpass::host {

enum class FindingStatus { kPass, kWarn, kFail };
std::string_view FindingStatusName(
    FindingStatus status);  // "PASS", "WARN", "FAIL"

struct Finding {
  std::string id;     // stable key for scripts: "iommu_groups"
  std::string title;  // "IOMMU groups"
  FindingStatus status = FindingStatus::kPass;
  std::string detail;  // what was found
  std::string fix;     // a concrete action; "" when PASS
};

// Finding ids, in the order CheckHost returns them.
inline constexpr std::string_view kCheckCpuVirtualization =
    "cpu_virtualization";
inline constexpr std::string_view kCheckKvmDevice = "kvm_device";
inline constexpr std::string_view kCheckIommuFirmware = "iommu_firmware";
inline constexpr std::string_view kCheckIommuCmdline = "iommu_cmdline";
inline constexpr std::string_view kCheckIommuPassthrough = "iommu_passthrough";
inline constexpr std::string_view kCheckIommuGroups = "iommu_groups";
inline constexpr std::string_view kCheckVfioDevice = "vfio_device";
inline constexpr std::string_view kCheckVfioPciModule = "vfio_pci_module";
inline constexpr std::string_view kCheckInterruptRemapping =
    "interrupt_remapping";
inline constexpr std::string_view kCheckDriverOverride = "driver_override";

std::vector<Finding> CheckHost(const Root& root);

bool AnyFailed(const std::vector<Finding>& findings);

}  // namespace devpass::host
