#include "host/readiness.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "fake_host.h"

namespace devpass::host {
namespace {

using testing::FakeHost;

const Finding& Get(const std::vector<Finding>& findings, std::string_view id) {
  for (const auto& f : findings) {
    if (f.id == id) return f;
  }
  static Finding none{"missing", "", FindingStatus::kFail, "", ""};
  ADD_FAILURE() << "no finding " << id;
  return none;
}

void IntelCpu(FakeHost& host, std::string_view flags = "fpu vme vmx ssse3") {
  host.WriteFile("proc/cpuinfo",
                 "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: " +
                     std::string(flags) + "\n\n");
}

// An Intel host that is ready for VFIO in every respect.
void MakeReadyIntelHost(FakeHost& host) {
  IntelCpu(host);
  host.WriteFile("dev/kvm", "");
  host.WriteFile("dev/vfio/vfio", "");
  host.WriteFile("sys/firmware/acpi/tables/DMAR", "DMAR");
  host.SetCmdline(
      "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet intel_iommu=on iommu=pt");
  host.AddDriver("vfio-pci", {}, "vfio_pci");
  host.AddModule("vfio_iommu_type1");
  host.WriteFile(
      "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "N\n");
  // VT-d ecap with bit 3 (interrupt remapping) set, as the kernel prints it.
  host.WriteFile("sys/class/iommu/dmar0/intel-iommu/ecap", "f050da\n");
  host.AddDevice({.bdf = "0000:00:02.0",
                  .class_code = 0x030000,
                  .driver = "i915",
                  .iommu_group = 0});
}

TEST(ReadinessTest, FullyReadyIntelHostPassesEverything) {
  FakeHost host;
  MakeReadyIntelHost(host);
  auto findings = CheckHost(host.root());
  ASSERT_EQ(findings.size(), 10u);
  for (const auto& f : findings) {
    EXPECT_EQ(f.status, FindingStatus::kPass) << f.id << ": " << f.detail;
    EXPECT_EQ(f.fix, "") << f.id;
  }
  EXPECT_FALSE(AnyFailed(findings));
  EXPECT_EQ(Get(findings, kCheckCpuVirtualization).detail,
            "Intel VT-x (vmx flag)");
  EXPECT_EQ(Get(findings, kCheckIommuGroups).detail, "1 groups");
}

TEST(ReadinessTest, ReadyAmdHostNeedsNoIommuParameter) {
  FakeHost host;
  host.SetCpuFlags("fpu svm sse2");
  host.WriteFile("dev/kvm", "");
  host.WriteFile("dev/vfio/vfio", "");
  host.WriteFile("sys/firmware/acpi/tables/IVRS", "IVRS");
  host.SetCmdline("root=/dev/nvme0n1p2 iommu=pt");
  host.AddModule("vfio_pci");
  host.AddDevice({.bdf = "0000:01:00.0", .iommu_group = 3});
  auto findings = CheckHost(host.root());
  EXPECT_FALSE(AnyFailed(findings));
  EXPECT_EQ(Get(findings, kCheckIommuCmdline).status, FindingStatus::kPass);
  EXPECT_EQ(Get(findings, kCheckInterruptRemapping).status,
            FindingStatus::kPass);
  EXPECT_EQ(Get(findings, kCheckIommuFirmware).detail,
            "AMD-Vi (ACPI IVRS table)");
}

TEST(ReadinessTest, NoIommuAtAllFailsWithFirmwareAndCmdlineFixes) {
  FakeHost host;
  MakeReadyIntelHost(host);
  std::filesystem::remove(host.Path("sys/firmware/acpi/tables/DMAR"));
  std::filesystem::remove_all(host.Path("sys/class/iommu"));
  std::filesystem::remove_all(host.Path("sys/kernel/iommu_groups"));
  std::filesystem::remove(
      host.Path("sys/bus/pci/devices/0000:00:02.0/iommu_group"));
  host.SetCmdline("root=/dev/sda1 ro quiet");
  auto findings = CheckHost(host.root());
  EXPECT_TRUE(AnyFailed(findings));
  const auto& fw = Get(findings, kCheckIommuFirmware);
  EXPECT_EQ(fw.status, FindingStatus::kFail);
  EXPECT_NE(fw.fix.find("enable VT-d / AMD-Vi in the firmware setup"),
            std::string::npos);
  const auto& cmd = Get(findings, kCheckIommuCmdline);
  EXPECT_EQ(cmd.status, FindingStatus::kFail);
  EXPECT_NE(
      cmd.fix.find("add intel_iommu=on to the kernel command line and reboot"),
      std::string::npos);
  const auto& groups = Get(findings, kCheckIommuGroups);
  EXPECT_EQ(groups.status, FindingStatus::kFail);
  EXPECT_NE(groups.fix.find("intel_iommu=on"), std::string::npos);
  EXPECT_EQ(Get(findings, kCheckInterruptRemapping).status,
            FindingStatus::kFail);
  // iommu=pt tunes an active IOMMU: no finding about it while the IOMMU is off.
  EXPECT_TRUE(std::none_of(
      findings.begin(), findings.end(),
      [](const Finding& f) { return f.id == kCheckIommuPassthrough; }));
  for (const auto& f : findings) {
    if (f.status != FindingStatus::kPass) {
      EXPECT_FALSE(f.fix.empty()) << f.id;
    }
  }
}

TEST(ReadinessTest, IntelWithoutIntelIommuOn) {
  FakeHost host;
  MakeReadyIntelHost(host);
  std::filesystem::remove_all(host.Path("sys/kernel/iommu_groups"));
  host.SetCmdline("root=/dev/sda1 ro iommu=pt");
  auto findings = CheckHost(host.root());
  const auto& cmd = Get(findings, kCheckIommuCmdline);
  EXPECT_EQ(cmd.status, FindingStatus::kFail);
  EXPECT_NE(cmd.fix.find("add intel_iommu=on"), std::string::npos);
  EXPECT_EQ(Get(findings, kCheckIommuFirmware).status, FindingStatus::kPass);
}

TEST(ReadinessTest, IntelKernelThatEnablesVtdByDefaultPasses) {
  FakeHost host;
  MakeReadyIntelHost(host);
  host.SetCmdline("root=/dev/sda1 ro iommu=pt");  // groups exist: default on
  auto findings = CheckHost(host.root());
  EXPECT_EQ(Get(findings, kCheckIommuCmdline).status, FindingStatus::kPass);
}

TEST(ReadinessTest, IntelIommuOffIsAFailure) {
  FakeHost host;
  MakeReadyIntelHost(host);
  host.SetCmdline("root=/dev/sda1 intel_iommu=off");
  auto findings = CheckHost(host.root());
  const auto& cmd = Get(findings, kCheckIommuCmdline);
  EXPECT_EQ(cmd.status, FindingStatus::kFail);
  EXPECT_NE(cmd.fix.find("replace intel_iommu=off"), std::string::npos);
}

TEST(ReadinessTest, NoKvmDevice) {
  FakeHost host;
  MakeReadyIntelHost(host);
  std::filesystem::remove(host.Path("dev/kvm"));
  auto findings = CheckHost(host.root());
  const auto& kvm = Get(findings, kCheckKvmDevice);
  EXPECT_EQ(kvm.status, FindingStatus::kFail);
  EXPECT_NE(kvm.fix.find("modprobe kvm_intel"), std::string::npos);
  EXPECT_NE(kvm.fix.find("firmware"), std::string::npos);
  EXPECT_TRUE(AnyFailed(findings));
}

TEST(ReadinessTest, CpuWithoutVirtualizationFlags) {
  FakeHost host;
  MakeReadyIntelHost(host);
  IntelCpu(host, "fpu sse2");
  std::filesystem::remove(host.Path("dev/kvm"));
  auto findings = CheckHost(host.root());
  EXPECT_EQ(Get(findings, kCheckCpuVirtualization).status,
            FindingStatus::kFail);
  // With /dev/kvm present (KVM offered by an outer hypervisor): a warning.
  host.WriteFile("dev/kvm", "");
  EXPECT_EQ(Get(CheckHost(host.root()), kCheckCpuVirtualization).status,
            FindingStatus::kWarn);
}

TEST(ReadinessTest, UnsafeInterruptsAllowedIsAWarning) {
  FakeHost host;
  MakeReadyIntelHost(host);
  host.WriteFile(
      "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "Y\n");
  auto findings = CheckHost(host.root());
  const auto& ir = Get(findings, kCheckInterruptRemapping);
  EXPECT_EQ(ir.status, FindingStatus::kWarn);
  EXPECT_NE(ir.detail.find("allow_unsafe_interrupts=Y"), std::string::npos);
  EXPECT_NE(ir.fix.find("allow_unsafe_interrupts"), std::string::npos);
  EXPECT_FALSE(AnyFailed(findings));
}

TEST(ReadinessTest, VtdWithoutInterruptRemappingFails) {
  FakeHost host;
  MakeReadyIntelHost(host);
  host.WriteFile("sys/class/iommu/dmar0/intel-iommu/ecap",
                 "f050d2\n");  // bit 3 clear
  host.WriteFile("sys/class/iommu/dmar1/intel-iommu/ecap", "f050da\n");
  auto findings = CheckHost(host.root());
  const auto& ir = Get(findings, kCheckInterruptRemapping);
  EXPECT_EQ(ir.status, FindingStatus::kFail);
  EXPECT_NE(ir.detail.find("1 of 2 VT-d units"), std::string::npos);
}

TEST(ReadinessTest, IntremapOffOnCmdlineFails) {
  FakeHost host;
  MakeReadyIntelHost(host);
  host.SetCmdline("intel_iommu=on iommu=pt intremap=off");
  auto findings = CheckHost(host.root());
  const auto& ir = Get(findings, kCheckInterruptRemapping);
  EXPECT_EQ(ir.status, FindingStatus::kFail);
  EXPECT_NE(ir.fix.find("intremap=off"), std::string::npos);
}

TEST(ReadinessTest, VfioPciAvailableButNotLoadedWarns) {
  FakeHost host;
  MakeReadyIntelHost(host);
  std::filesystem::remove_all(host.Path("sys/module/vfio_pci"));
  std::filesystem::remove_all(host.Path("sys/bus/pci/drivers/vfio-pci"));
  std::filesystem::remove(host.Path("dev/vfio/vfio"));
  host.WriteFile("proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
  host.WriteFile("lib/modules/6.1.0-13-amd64/modules.dep",
                 "kernel/drivers/vfio/pci/vfio-pci.ko: kernel/drivers/vfio/pci/"
                 "vfio-pci-core.ko kernel/drivers/vfio/vfio.ko\n");
  auto findings = CheckHost(host.root());
  EXPECT_EQ(Get(findings, kCheckVfioPciModule).status, FindingStatus::kWarn);
  EXPECT_EQ(Get(findings, kCheckVfioDevice).status, FindingStatus::kWarn);
  EXPECT_FALSE(AnyFailed(findings));

  // Not shipped with the running kernel at all.
  host.WriteFile("lib/modules/6.1.0-13-amd64/modules.dep",
                 "kernel/fs/ext4/ext4.ko:\n");
  findings = CheckHost(host.root());
  EXPECT_EQ(Get(findings, kCheckVfioPciModule).status, FindingStatus::kFail);
  EXPECT_EQ(Get(findings, kCheckVfioDevice).status, FindingStatus::kFail);
}

TEST(ReadinessTest, MissingIommuPtIsOnlyAWarning) {
  FakeHost host;
  MakeReadyIntelHost(host);
  host.SetCmdline("intel_iommu=on");
  auto findings = CheckHost(host.root());
  const auto& pt = Get(findings, kCheckIommuPassthrough);
  EXPECT_EQ(pt.status, FindingStatus::kWarn);
  EXPECT_NE(pt.fix.find("iommu=pt"), std::string::npos);
  EXPECT_FALSE(AnyFailed(findings));
}

TEST(ReadinessTest, NoDriverOverrideAttribute) {
  FakeHost host;
  MakeReadyIntelHost(host);
  std::filesystem::remove(
      host.Path("sys/bus/pci/devices/0000:00:02.0/driver_override"));
  EXPECT_EQ(Get(CheckHost(host.root()), kCheckDriverOverride).status,
            FindingStatus::kFail);
}

TEST(ReadinessTest, StatusNames) {
  EXPECT_EQ(FindingStatusName(FindingStatus::kPass), "PASS");
  EXPECT_EQ(FindingStatusName(FindingStatus::kWarn), "WARN");
  EXPECT_EQ(FindingStatusName(FindingStatus::kFail), "FAIL");
}

}  // namespace
}  // namespace devpass::host
