// vCPU exits fed as plain values, and the whole VM (setup, run loop,
// devices, teardown) against the fake KVM seam.

#include "vmm/vm.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "fake_kvm.h"
#include "synthetic_bzimage.h"
#include "vm_host_dir.h"
#include "vmm/exits.h"
#include "vmm/layout.h"
#include "vmm/vcpu.h"
#include "vmm/x86_boot.h"

namespace devpass::vmm {
namespace {

using testing::FakeKvm;

class Port : public pci::IoHandler {
 public:
  void Read(uint64_t offset, std::span<uint8_t> d) override {
    for (size_t i = 0; i < d.size(); ++i)
      d[i] = static_cast<uint8_t>(0x40 + offset + i);
  }
  void Write(uint64_t offset, std::span<const uint8_t> d) override {
    for (uint8_t b : d) written.push_back({offset, b});
  }
  std::vector<std::pair<uint64_t, uint8_t>> written;
};

TEST(HandleExit, IoOutAndStringIoGoToTheDevice) {
  pci::AddressSpace pio("I/O port"), mmio("MMIO");
  auto dev = std::make_shared<Port>();
  ASSERT_TRUE(pio.Add(0x3f8, 8, dev, "uart"));
  uint8_t data[3] = {'a', 'b', 'c'};
  auto out = HandleExit(ExitIo{false, 0x3f8, 1, 3, data}, pio, mmio);
  EXPECT_EQ(out.stop, StopReason::kNone);
  ASSERT_EQ(dev->written.size(), 3u);
  EXPECT_EQ(dev->written[2], (std::pair<uint64_t, uint8_t>{0, 'c'}));
}

TEST(HandleExit, IoInFillsDataAndUnmappedPortsReadOnes) {
  pci::AddressSpace pio("I/O port"), mmio("MMIO");
  ASSERT_TRUE(pio.Add(0x3f8, 8, std::make_shared<Port>(), "uart"));
  uint8_t d[2] = {0, 0};
  HandleExit(ExitIo{true, 0x3fd, 2, 1, d}, pio, mmio);
  EXPECT_EQ(d[0], 0x45);
  EXPECT_EQ(d[1], 0x46);
  uint8_t u[4] = {0, 0, 0, 0};
  HandleExit(ExitIo{true, 0x80, 4, 1, u}, pio, mmio);
  EXPECT_EQ(u[3], 0xff);
}

TEST(HandleExit, MmioReadAndWrite) {
  pci::AddressSpace pio("I/O port"), mmio("MMIO");
  auto dev = std::make_shared<Port>();
  ASSERT_TRUE(mmio.Add(0xc0000000, 0x1000, dev, "bar"));
  uint8_t d[4] = {1, 2, 3, 4};
  HandleExit(ExitMmio{true, 0xc0000010, d}, pio, mmio);
  EXPECT_EQ(dev->written[0], (std::pair<uint64_t, uint8_t>{0x10, 1}));
  HandleExit(ExitMmio{false, 0xc0000020, d}, pio, mmio);
  EXPECT_EQ(d[0], 0x60);
}

TEST(HandleExit, StopsOnHltShutdownFailEntryEventsAndUnknown) {
  pci::AddressSpace pio("I/O port"), mmio("MMIO");
  EXPECT_EQ(HandleExit(ExitHlt{}, pio, mmio).stop, StopReason::kHalted);
  EXPECT_EQ(HandleExit(ExitShutdown{}, pio, mmio).stop,
            StopReason::kTripleFault);
  auto fe = HandleExit(ExitFailEntry{0x80000021, 1}, pio, mmio);
  EXPECT_EQ(fe.stop, StopReason::kCrash);
  EXPECT_NE(fe.detail.find("hardware reason 0x80000021"), std::string::npos);
  EXPECT_EQ(
      HandleExit(ExitSystemEvent{KVM_SYSTEM_EVENT_SHUTDOWN}, pio, mmio).stop,
      StopReason::kPowerOff);
  EXPECT_EQ(HandleExit(ExitSystemEvent{KVM_SYSTEM_EVENT_RESET}, pio, mmio).stop,
            StopReason::kReset);
  EXPECT_EQ(HandleExit(ExitSystemEvent{KVM_SYSTEM_EVENT_CRASH}, pio, mmio).stop,
            StopReason::kCrash);
  EXPECT_EQ(HandleExit(ExitInternalError{1}, pio, mmio).stop,
            StopReason::kCrash);
  EXPECT_EQ(HandleExit(ExitInterrupted{}, pio, mmio).stop, StopReason::kNone);
  EXPECT_EQ(HandleExit(ExitUnknown{99}, pio, mmio).stop, StopReason::kCrash);
}

TEST(DecodeExit, FromKvmRun) {
  std::vector<uint8_t> mem(8192, 0);
  auto* run = reinterpret_cast<kvm_run*>(mem.data());
  testing::IoOut(0x3f8, 'Q')(run);
  VcpuExit e = DecodeExit(run, mem.size());
  ASSERT_TRUE(std::holds_alternative<ExitIo>(e));
  EXPECT_EQ(std::get<ExitIo>(e).port, 0x3f8);
  EXPECT_EQ(std::get<ExitIo>(e).data[0], 'Q');
  run->io.data_offset = 9000;  // outside the mapping
  EXPECT_TRUE(std::holds_alternative<ExitUnknown>(DecodeExit(run, mem.size())));
  run->exit_reason = KVM_EXIT_MMIO;
  run->mmio.phys_addr = 0xfee00000;
  run->mmio.len = 4;
  run->mmio.is_write = 1;
  e = DecodeExit(run, mem.size());
  ASSERT_TRUE(std::holds_alternative<ExitMmio>(e));
  EXPECT_EQ(std::get<ExitMmio>(e).data.size(), 4u);
  run->exit_reason = KVM_EXIT_FAIL_ENTRY;
  run->fail_entry.hardware_entry_failure_reason = 7;
  EXPECT_EQ(
      std::get<ExitFailEntry>(DecodeExit(run, mem.size())).hardware_reason, 7u);
}

TEST(Registers, DumpNamesRipCrsAndSegments) {
  kvm_regs r{};
  r.rip = 0xffffffff81000000;
  kvm_sregs s = LongModeSregs(kvm_sregs{});
  std::string d = FormatRegisters(0, r, s);
  EXPECT_NE(d.find("RIP=0xffffffff81000000"), std::string::npos);
  EXPECT_NE(d.find("CR3=0x0000000000009000"), std::string::npos);
  EXPECT_NE(d.find("EFER=0x500"), std::string::npos);
  EXPECT_NE(d.find("CS  sel=0x0010"), std::string::npos);
}

// ---- the whole VM against the fake.
class VmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config.console_out = [this](uint8_t c) {
      std::lock_guard lock(mu);
      console.push_back(static_cast<char>(c));
    };
  }

  testing::VmHostDir host{"devpass-vm-test"};
  std::filesystem::path dir = host.path();
  VmConfig config = host.Config();
  FakeKvm kvm;
  std::mutex mu;
  std::string console;
};

TEST_F(VmTest, SetupOrderMemslotsAndBootState) {
  config.cpus = 2;
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm) << vm.error().message;
  std::vector<std::string> want_prefix = {"OpenKvm",
                                          "CreateVm",
                                          "SetTssAddr 0xfffbd000",
                                          "SetIdentityMapAddr 0xfffbc000",
                                          "CreateIrqchip",
                                          "CreatePit2",
                                          "SetUserMemoryRegion 0 0 0x8000000"};
  ASSERT_GE(kvm.calls.size(), want_prefix.size());
  for (size_t i = 0; i < want_prefix.size(); ++i)
    EXPECT_EQ(kvm.calls[i], want_prefix[i]);
  EXPECT_EQ((*vm)->vcpu_count(), 2);
  EXPECT_EQ(kvm.regs[0].rip, 0x100200u);
  EXPECT_EQ(kvm.regs[0].rsi, layout::kBootParams.value);
  EXPECT_EQ(kvm.sregs[0].efer, kEferLme | kEferLma);
  EXPECT_EQ(kvm.sregs.count(1), 0u);         // the AP waits for SIPI
  EXPECT_EQ(kvm.cpuid[1][1].ebx >> 24, 1u);  // APIC ID of vCPU 1
  const uint8_t* ram = (*vm)->memory().host_base();
  EXPECT_EQ(std::memcmp(ram + layout::kMpFloatingPointer.value, "_MP_", 4), 0);
  EXPECT_EQ(std::memcmp(ram + layout::kMpTable.value, "PCMP", 4), 0);
  vm->reset();
  // Teardown deleted the memslot (size 0).
  ASSERT_EQ(kvm.regions.size(), 2u);
  EXPECT_EQ(kvm.regions[1].memory_size, 0u);
}

TEST_F(VmTest, SerialOutputThenPowerOff) {
  kvm.script = {testing::IoOut(layout::kCom1Port, 'o'),
                testing::IoOut(layout::kCom1Port, 'k'),
                testing::IoOut(layout::kPowerOffPort, 0)};
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm) << vm.error().message;
  ASSERT_TRUE((*vm)->Start());
  VmStop stop = (*vm)->Wait();
  EXPECT_EQ(stop.reason, StopReason::kPowerOff);
  EXPECT_EQ(console, "ok");
}

TEST_F(VmTest, I8042ResetIsAReset) {
  config.cpus = 2;  // the AP must be kicked out of its KVM_RUN too
  kvm.script = {testing::IoOut(layout::kI8042CommandPort, 0xfe)};
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm);
  ASSERT_TRUE((*vm)->Start());
  VmStop stop = (*vm)->Wait();
  EXPECT_EQ(stop.reason, StopReason::kReset);
  EXPECT_NE(stop.detail.find("kernel panic"), std::string::npos);
}

TEST_F(VmTest, TripleFaultDumpsRegisters) {
  kvm.script = {testing::Exit(KVM_EXIT_SHUTDOWN)};
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm);
  ASSERT_TRUE((*vm)->Start());
  VmStop stop = (*vm)->Wait();
  EXPECT_EQ(stop.reason, StopReason::kTripleFault);
  EXPECT_NE(stop.detail.find("RIP=0x0000000000100200"), std::string::npos)
      << stop.detail;
}

TEST_F(VmTest, StopFromTheHostEndsEveryVcpu) {
  config.cpus = 3;
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm);
  ASSERT_TRUE((*vm)->Start());
  (*vm)->Stop(StopReason::kSignal, "stopped by SIGTERM");
  VmStop stop = (*vm)->Wait();
  EXPECT_EQ(stop.reason, StopReason::kSignal);
}

TEST_F(VmTest, StopFromTheHostSaysWhereEachVcpuWas) {
  config.cpus = 2;
  kvm.script = {testing::IoOut(layout::kCom1Port, 'a'),
                testing::IoOut(layout::kCom1Port, 'b')};
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm);
  ASSERT_TRUE((*vm)->Start());
  // The guest "hangs" once the script is consumed: both bytes reached COM1.
  for (int i = 0; i < 5000; ++i) {
    {
      std::lock_guard lock(mu);
      if (console == "ab") break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  (*vm)->Stop(StopReason::kSignal, "stopped by SIGTERM");
  VmStop stop = (*vm)->Wait();
  EXPECT_EQ(stop.reason, StopReason::kSignal);
  EXPECT_NE(stop.detail.find(
                "stopped by SIGTERM\nvCPU 0: 2 exits reached devpass, the "
                "last: port 0x3f8 out (1 byte)\nvCPU 0 registers:"),
            std::string::npos)
      << stop.detail;
  EXPECT_NE(stop.detail.find("vCPU 1: 0 exits reached devpass, the last: none"),
            std::string::npos)
      << stop.detail;
}

TEST_F(VmTest, InjectNmiQueuesOneNmiOnEveryVcpuFromItsOwnThread) {
  config.cpus = 2;
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_TRUE(vm);
  ASSERT_TRUE((*vm)->Start());
  (*vm)->InjectNmi();
  for (int i = 0; i < 5000 && kvm.CallsStartingWith("Nmi") < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  (*vm)->Stop(StopReason::kSignal, "stopped by SIGTERM");
  VmStop stop = (*vm)->Wait();
  // One each, although both vCPUs went round their loops again since.
  EXPECT_EQ(std::count(kvm.calls.begin(), kvm.calls.end(), "Nmi vcpu 0"), 1);
  EXPECT_EQ(std::count(kvm.calls.begin(), kvm.calls.end(), "Nmi vcpu 1"), 1);
  EXPECT_NE(stop.detail.find("the last: none, 1 NMIs injected"),
            std::string::npos)
      << stop.detail;
}

TEST(DescribeExit, NamesTheExitAndItsAddress) {
  uint8_t data[8] = {};
  EXPECT_EQ(DescribeExit(ExitIo{true, 0x70, 1, 1, {data, 1}}),
            "port 0x70 in (1 byte)");
  EXPECT_EQ(DescribeExit(ExitIo{false, 0x3f8, 1, 12, {data, 8}}),
            "port 0x3f8 out (1 byte, x12)");
  EXPECT_EQ(DescribeExit(ExitMmio{true, 0xfee000b0, {data, 4}}),
            "MMIO write 0xfee000b0 (4 bytes)");
  EXPECT_EQ(DescribeExit(ExitHlt{}), "HLT");
  EXPECT_EQ(DescribeExit(ExitUnknown{99}), "unknown exit reason 99");
}

TEST_F(VmTest, ErrorsLeaveNothingBehind) {
  config.initrd = dir / "missing.img";
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message.find("initrd"), std::string::npos);
  EXPECT_TRUE(kvm.calls.empty());  // checked before KVM is touched

  config.initrd.reset();
  config.mem_bytes = 8 * kGiB;
  vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message.find("needs 8192 MiB"), std::string::npos);

  config.mem_bytes = 128 * kMiB;
  kvm.open_errno = ENOENT;
  vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message.find("fake open failed"), std::string::npos);

  kvm.open_errno = 0;
  kvm.caps[KVM_CAP_IRQCHIP] = 0;
  vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message.find("KVM_CAP_IRQCHIP"), std::string::npos);
  kvm.caps.clear();

  kvm.api_version = 11;
  vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message.find("API version 11"), std::string::npos);
}

TEST_F(VmTest, NotABzImage) {
  std::ofstream(dir / "vmlinux") << std::string(
                                        "\x7f"
                                        "ELF",
                                        4)
                                 << std::string(4096, '\0');
  config.kernel = dir / "vmlinux";
  auto vm = Vm::Create(kvm, Root(dir), config);
  ASSERT_FALSE(vm);
  EXPECT_NE(vm.error().message.find("not a Linux bzImage"), std::string::npos);
  EXPECT_NE(vm.error().message.find("ELF"), std::string::npos);
}

}  // namespace
}  // namespace devpass::vmm

namespace devpass::vmm {
namespace {

TEST(SystemKvmApi, MissingDevKvmSaysWhichModuleToLoad) {
  auto kvm = NewSystemKvmApi();
  auto fd = kvm->OpenKvm("/nonexistent-devpass-test/kvm");
  ASSERT_FALSE(fd);
  EXPECT_NE(fd.error().message.find("load kvm_intel or kvm_amd"),
            std::string::npos);
  EXPECT_NE(fd.error().message.find("enable VT-x/AMD-V"), std::string::npos);
  EXPECT_EQ(fd.error().sys_errno, ENOENT);
}

}  // namespace
}  // namespace devpass::vmm
