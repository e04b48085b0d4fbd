// lab_vfio_edu BDF: proves devpass's VFIO layer on a real kernel, against
// QEMU's edu device (docs/specs/edu.rst in QEMU) hidden on vfio-pci. Runs in
// the lab (tests/lab), as root. One line per check:
//   CHECK <name> PASS|FAIL|INFO <details>
// and a final "RESULT failures=N"; exits 1 if any check failed, 2 on usage.

#include <fmt/format.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "base/pci_address.h"
#include "base/root.h"
#include "vfio/container.h"
#include "vfio/dma.h"
#include "vfio/inspect.h"

namespace {

using devpass::vfio::DmaMapping;
using devpass::vfio::EventFd;
using devpass::vfio::Mapping;
using std::chrono::milliseconds;

// edu registers (BAR0).
constexpr uint64_t kIdent = 0x00, kLiveness = 0x04, kFactorial = 0x08,
                   kStatus = 0x20, kIrqStatus = 0x24, kIrqRaise = 0x60,
                   kIrqAck = 0x64, kDmaSrc = 0x80, kDmaDst = 0x88,
                   kDmaCount = 0x90, kDmaCmd = 0x98;
constexpr uint32_t kStatusComputing = 0x01, kStatusIrqOnFactorial = 0x80;
constexpr uint32_t kIrqFactorial = 0x001, kIrqDma = 0x100;
// DMA command: bit 0 start, bit 1 direction (0 = RAM -> edu, 1 = edu -> RAM),
// bit 2 raise an interrupt when done.
constexpr uint64_t kDmaStart = 1, kDmaToRam = 2, kDmaIrq = 4;
constexpr uint64_t kEduBuffer = 0x40000;  // the device's 4 KiB buffer
// edu's DMA mask is 28 bits: IOVAs must be below 256 MiB.
constexpr uint64_t kIova = 0x100000, kUnmappedIova = 0x800000;
constexpr size_t kBufSize = 0x2000, kXfer = 256;
constexpr milliseconds kTimeout(5000);

int failures = 0;

template <typename... Args>
void Check(bool ok, const char* name, fmt::format_string<Args...> f,
           Args&&... args) {
  if (!ok) ++failures;
  std::printf("CHECK %-32s %s %s\n", name, ok ? "PASS" : "FAIL",
              fmt::format(f, std::forward<Args>(args)...).c_str());
  std::fflush(stdout);
}

void Info(const char* name, const std::string& text) {
  std::printf("CHECK %-32s INFO %s\n", name, text.c_str());
  std::fflush(stdout);
}

// Polls until (reg & mask) == 0; false on timeout.
bool WaitClear(const Mapping& bar, uint64_t reg, uint32_t mask) {
  auto end = std::chrono::steady_clock::now() + kTimeout;
  while (bar.Read32(reg) & mask) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return true;
}

bool StartDma(const Mapping& bar, uint64_t src, uint64_t dst, uint64_t cmd) {
  bar.Write64(kDmaSrc, src);
  bar.Write64(kDmaDst, dst);
  bar.Write64(kDmaCount, kXfer);
  bar.Write64(kDmaCmd, cmd);
  return WaitClear(bar, kDmaCmd, kDmaStart);
}

// Reads and acknowledges the interrupt status; returns it.
uint32_t AckIrq(const Mapping& bar) {
  uint32_t status = bar.Read32(kIrqStatus);
  bar.Write32(kIrqAck, status);
  return status;
}

int Run(const devpass::PciAddress& address) {
  auto session = devpass::vfio::OpenVfioDevice(
      devpass::vfio::NewKernelVfioApi(), devpass::Root("/"), address);
  if (!session) {
    Check(false, "open (container, group, device)", "{}",
          session.error().ToString());
    return 1;
  }
  auto& dev = session->device;
  auto& container = session->container;
  Check(true, "open (container, group, device)",
        "group {} {} regions={} irqs={}", dev.group().number(),
        container->name(), dev.regions().size(), dev.irqs().size());
  {
    const auto& info = container->iommu_info();
    std::string ranges;
    for (const auto& r : info.iova_ranges)
      ranges += fmt::format(" 0x{:x}-0x{:x}", r.start, r.end);
    Info("iommu", fmt::format("pgsizes=0x{:x} iova ranges:{}",
                              info.iova_pgsizes, ranges));
    std::string reserved;
    for (const auto& r : dev.group().reserved_regions()) {
      reserved += fmt::format(" 0x{:x}-0x{:x}({})", r.start, r.end, r.type);
    }
    Info("reserved regions", reserved.empty() ? "none" : reserved);
  }

  auto vendor = dev.ReadConfig16(PCI_VENDOR_ID);
  auto device = dev.ReadConfig16(PCI_DEVICE_ID);
  Check(vendor && device && *vendor == 0x1234 && *device == 0x11e8,
        "config vendor:device", "{:04x}:{:04x}", vendor ? *vendor : 0,
        device ? *device : 0);

  // Memory decoding + bus mastering: without bus master, edu's DMA is dropped.
  auto cmd = dev.ReadConfig16(PCI_COMMAND);
  bool cmd_ok =
      cmd && dev.WriteConfig16(PCI_COMMAND,
                               static_cast<uint16_t>(*cmd | PCI_COMMAND_MEMORY |
                                                     PCI_COMMAND_MASTER));
  auto cmd_after = dev.ReadConfig16(PCI_COMMAND);
  Check(cmd_ok && cmd_after && (*cmd_after & PCI_COMMAND_MASTER),
        "config COMMAND bus master", "0x{:04x} -> 0x{:04x}", cmd ? *cmd : 0,
        cmd_after ? *cmd_after : 0);

  auto bar = dev.MapRegion(VFIO_PCI_BAR0_REGION_INDEX);
  if (!bar) {
    Check(false, "mmap BAR0", "{}", bar.error().ToString());
    return 1;
  }
  Check(true, "mmap BAR0", "{} bytes", bar->size());

  uint32_t ident = bar->Read32(kIdent);
  Check(ident == 0x010000ed, "ident register 0x00", "0x{:08x}", ident);

  bar->Write32(kLiveness, 0x12345678);
  uint32_t inverted = bar->Read32(kLiveness);
  Check(inverted == ~0x12345678u, "liveness register 0x04",
        "wrote 0x12345678 read 0x{:08x}", inverted);

  // --- MSI: factorial completion.
  auto msi = EventFd::Create();
  const int msi_fds[] = {msi ? msi->fd() : -1};
  auto msi_on = dev.EnableVectors(VFIO_PCI_MSI_IRQ_INDEX, msi_fds);
  Check(msi && msi_on, "SET_IRQS MSI eventfd", "{}",
        msi_on ? "ok" : msi_on.error().ToString());
  if (msi && msi_on) {
    bar->Write32(kStatus, kStatusIrqOnFactorial);
    bar->Write32(kFactorial, 10);
    auto events = msi->Wait(kTimeout);
    bool done = WaitClear(*bar, kStatus, kStatusComputing);
    uint32_t status = AckIrq(*bar);
    uint32_t result = bar->Read32(kFactorial);
    Check(done && result == 3628800 && events && *events > 0 &&
              (status & kIrqFactorial),
          "factorial 10! with MSI", "result={} eventfd={} irq_status=0x{:x}",
          result, events ? *events : 0, status);
    bar->Write32(kStatus, 0);

    bar->Write32(kIrqRaise, 0x1000);
    events = msi->Wait(kTimeout);
    status = AckIrq(*bar);
    Check(events && *events > 0, "MSI via raise register 0x60",
          "eventfd={} irq_status=0x{:x}", events ? *events : 0, status);
  }

  // --- DMA both ways through the IOMMU.
  void* mem = ::mmap(nullptr, kBufSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  auto* buf = static_cast<uint8_t*>(mem);
  auto dma = DmaMapping::Map(container, mem, kIova, kBufSize);
  Check(static_cast<bool>(dma), "IOMMU_MAP_DMA", "iova 0x{:x} size 0x{:x} {}",
        kIova, kBufSize, dma ? "" : dma.error().ToString());
  if (dma) {
    for (size_t i = 0; i < kXfer; ++i) buf[i] = static_cast<uint8_t>(i ^ 0x5a);
    std::memset(buf + 0x1000, 0, kXfer);
    bool to_dev = StartDma(*bar, kIova, kEduBuffer, kDmaStart);
    bool to_ram =
        StartDma(*bar, kEduBuffer, kIova + 0x1000, kDmaStart | kDmaToRam);
    Check(to_dev && to_ram && std::memcmp(buf, buf + 0x1000, kXfer) == 0,
          "DMA RAM -> edu -> RAM", "{} bytes, first byte back 0x{:02x}", kXfer,
          buf[0x1000]);

    if (msi && msi_on) {
      std::memset(buf + 0x1000, 0, kXfer);
      (void)msi->Consume();
      bar->Write64(kDmaSrc, kEduBuffer);
      bar->Write64(kDmaDst, kIova + 0x1000);
      bar->Write64(kDmaCount, kXfer);
      bar->Write64(kDmaCmd, kDmaStart | kDmaToRam | kDmaIrq);
      auto events = msi->Wait(kTimeout);
      uint32_t status = AckIrq(*bar);
      Check(events && *events > 0 && (status & kIrqDma) &&
                std::memcmp(buf, buf + 0x1000, kXfer) == 0,
            "DMA completion MSI", "eventfd={} irq_status=0x{:x}",
            events ? *events : 0, status);
    }

    // A never-mapped IOVA: the IOMMU faults the write, memory stays as is.
    std::memset(buf + 0x1000, 0xee, kXfer);
    StartDma(*bar, kEduBuffer, kUnmappedIova, kDmaStart | kDmaToRam);
    bool untouched = buf[0x1000] == 0xee && buf[0x1000 + kXfer - 1] == 0xee;
    Check(untouched, "DMA to unmapped IOVA 0x800000", "buffer {}",
          untouched ? "untouched" : "changed");
  }

  // --- INTx: enabling it disables MSI (they exclude each other).
  auto intx = EventFd::Create();
  auto intx_on = intx ? dev.EnableIntx(intx->fd())
                      : devpass::Status(tl::unexpected(intx.error()));
  Check(static_cast<bool>(intx_on), "SET_IRQS INTx eventfd", "{}",
        intx_on ? "ok" : intx_on.error().ToString());
  if (intx_on) {
    bar->Write32(kIrqRaise, 0x2);
    auto first = intx->Wait(kTimeout);
    uint32_t status = AckIrq(*bar);  // deasserts the level-triggered line
    auto unmasked = dev.UnmaskIntx();
    bar->Write32(kIrqRaise, 0x4);
    auto second = intx->Wait(kTimeout);
    uint32_t status2 = AckIrq(*bar);
    Check(first && *first > 0 && unmasked && second && *second > 0,
          "INTx raise, ack, unmask",
          "first={} (0x{:x}) unmask={} second={} (0x{:x})", first ? *first : 0,
          status, unmasked ? "ok" : unmasked.error().ToString(),
          second ? *second : 0, status2);
  }

  // --- Reset: edu has no reset method; the kernel says EINVAL.
  auto reset = dev.Reset();
  if (reset) {
    Check(true, "VFIO_DEVICE_RESET", "reset ok (flag {})",
          dev.supports_reset());
  } else if (reset.error().code == devpass::ErrorCode::kUnsupported) {
    Info("VFIO_DEVICE_RESET", reset.error().ToString());  // "no reset: ..."
  } else {
    Check(false, "VFIO_DEVICE_RESET", "{}", reset.error().ToString());
  }

  // --- After UNMAP the old IOVA is no longer reachable.
  if (dma) {
    auto unmapped = dma->Unmap();
    Check(static_cast<bool>(unmapped), "IOMMU_UNMAP_DMA", "{}",
          unmapped ? "ok" : unmapped.error().ToString());
    std::memset(buf + 0x1000, 0xee, kXfer);
    StartDma(*bar, kEduBuffer, kIova + 0x1000, kDmaStart | kDmaToRam);
    bool untouched = buf[0x1000] == 0xee && buf[0x1000 + kXfer - 1] == 0xee;
    Check(untouched, "DMA after UNMAP blocked", "buffer {}",
          untouched ? "untouched" : "overwritten");
  }
  ::munmap(mem, kBufSize);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s BDF   (an edu device bound to vfio-pci)\n",
                 argv[0]);
    return 2;
  }
  auto address = devpass::PciAddress::Parse(argv[1]);
  if (!address) {
    std::fprintf(stderr, "%s\n", address.error().message.c_str());
    return 2;
  }
  Run(*address);
  std::printf("RESULT failures=%d\n", failures);
  return failures ? 1 : 0;
}
