// guest_edu: "the guest's own driver" for QEMU's edu device (1234:11e8),
// written against the raw kernel interfaces (linux/vfio.h ioctls in no-IOMMU
// mode, sysfs, /proc/self/pagemap). It runs where there is no IOMMU: inside a
// nested guest (devpass run, or QEMU with -device vfio-pci), or natively on a
// lab booted with --no-iommu (the baseline). Same binary everywhere.
//
//   guest_edu [BDF] [--intx] [--bench N [--label WAY]] [--dma-to GPA [--peek]]
//             [--dma-from GPA]
//
// Without BDF: the first 1234:11e8 device. It loads vfio in no-IOMMU mode
// (modprobe, or the parameter if vfio is loaded), binds the edu to vfio-pci
// (driver_override), opens /dev/vfio/noiommu-N with a VFIO_NOIOMMU_IOMMU
// container, maps BAR0 (pread/pwrite if mmap is refused) and checks:
//   ident register (0x010000ed), liveness register (~x), factorial 10! whose
//   completion raises an MSI (VFIO_DEVICE_SET_IRQS, eventfd), and a DMA round
//   trip RAM -> edu buffer (0x40000) -> other RAM page with a completion MSI.
// DMA addresses are physical (guest-physical in a guest: the VMM maps guest
// RAM in the real IOMMU with IOVA = GPA), from /proc/self/pagemap.
//
// --intx         INTx instead of MSI (the other options are ignored): enable
//                VFIO_PCI_INTX_IRQ_INDEX with an eventfd, then 5 rounds of a
//                factorial with the raise-interrupt bit; each waits for the
//                eventfd, acks in the edu (0x64), then unmasks the line through
//                VFIO (ACTION_UNMASK): VFIO masks INTx when it fires, so a lost
//                unmask (or, under a VMM, a lost KVM irqfd resample) shows as a
//                timeout in round 2. "ok intx round N: ..." lines.
// --bench N      also time N MMIO reads, N MSI round trips (raise register ->
//                eventfd), min(N,5) 2 KiB DMA round trips: "bench ..." lines.
// --label WAY    with --bench: min(N,20) DMA round trips, and every sample
//                also as "BENCH edu.msi_rtt WAY us" / "BENCH edu.dma WAY MB/s"
//                for bench/report (the benchmark harness, bench/lab/run).
// --dma-to GPA   then make the edu write 2 KiB of a marker to GPA (an address
//                the guest does not own: above its RAM). The verdict is the
//                host's: its IOMMU must log a fault for the device. --peek
//                also reads GPA through /dev/mem before and after (FAIL if the
//                marker shows up there: only meaningful if the VMM backs GPA
//                with something for the CPU, as it would if it had mapped it
//                for the device too).
// --dma-from GPA make the edu read 2 KiB from GPA; prints what came back.
// edu masks DMA addresses to 28 bits (QEMU hw/misc/edu.c, dma_mask): GPAs
// must be below 0x10000000, or the DMA would be clamped onto other memory.
//
// Output: "ok NAME: ..." / "FAIL NAME: ..." / "info ..." / "bench ...", then
// "guest_edu: N checks, M failed". Exit 0 iff nothing failed, 2 on usage.
// Register map: QEMU docs/specs/edu.rst.
#include <linux/vfio.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

#include <chrono>
#include <thread>

#include "guest_common.h"
#include "guest_noiommu.h"

namespace {

using namespace guest;
using Clock = std::chrono::steady_clock;

// edu BAR0 registers (docs/specs/edu.rst). All accesses are 32-bit: edu takes
// 4-byte accesses everywhere, and a 32-bit write to a DMA register sets it
// whole; 8-byte MMIO is not something every VMM forwards.
constexpr uint32_t kIdent = 0x00, kLiveness = 0x04, kFactorial = 0x08,
                   kStatus = 0x20, kIrqStatus = 0x24, kIrqRaise = 0x60,
                   kIrqAck = 0x64, kDmaSrc = 0x80, kDmaDst = 0x88,
                   kDmaCount = 0x90, kDmaCmd = 0x98;
constexpr uint32_t kStatusComputing = 0x01, kStatusIrqFact = 0x80;
constexpr uint32_t kIrqFact = 0x001, kIrqDma = 0x100;
constexpr uint32_t kDmaRun = 1, kDmaToRam = 2, kDmaIrq = 4;
constexpr uint32_t kEduBuffer = 0x40000;
// Bytes per DMA. The buffer is 4 KiB, but QEMU 7.2's edu_check_range wants
// the transfer's end strictly inside it and calls hw_error() otherwise: a
// 4096-byte DMA at 0x40000 aborts the whole QEMU (the lab). Later QEMUs only
// log it. Stay well inside.
constexpr uint32_t kXfer = 2048;
constexpr uint64_t kEduDmaLimit = 1ULL << 28;  // edu's default dma_mask + 1
constexpr int kTimeoutMs = 5000;

// BAR0 through an mmap of the VFIO region, or pread/pwrite on the device fd.
class Bar {
 public:
  Bar(int device, uint64_t offset, volatile uint8_t* map)
      : device_(device), offset_(offset), map_(map) {}
  uint32_t Read32(uint32_t reg) const {
    if (map_) return *reinterpret_cast<volatile uint32_t*>(map_ + reg);
    uint32_t v = ~0u;
    if (::pread(device_, &v, 4, static_cast<off_t>(offset_ + reg)) != 4)
      v = ~0u;
    return v;
  }
  void Write32(uint32_t reg, uint32_t v) const {
    if (map_) {
      *reinterpret_cast<volatile uint32_t*>(map_ + reg) = v;
    } else if (::pwrite(device_, &v, 4, static_cast<off_t>(offset_ + reg)) !=
               4) {
      Info("pwrite BAR0+0x%x failed: %s", reg, std::strerror(errno));
    }
  }

 private:
  int device_;
  uint64_t offset_;
  volatile uint8_t* map_;
};

// Waits up to TIMEOUT_MS for the eventfd; returns its counter (0: timeout).
uint64_t WaitEvent(int efd, int timeout_ms = kTimeoutMs) {
  pollfd p{efd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return 0;
  uint64_t n = 0;
  if (::read(efd, &n, sizeof(n)) != sizeof(n)) return 0;
  return n;
}

bool WaitClear(const Bar& bar, uint32_t reg, uint32_t mask) {
  auto end = Clock::now() + std::chrono::milliseconds(kTimeoutMs);
  while (bar.Read32(reg) & mask) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// One edu DMA of COUNT bytes; TO_RAM: edu buffer -> RAM. False on timeout.
bool Dma(const Bar& bar, uint64_t src, uint64_t dst, uint32_t count,
         bool to_ram, bool irq) {
  bar.Write32(kDmaSrc, static_cast<uint32_t>(src));
  bar.Write32(kDmaDst, static_cast<uint32_t>(dst));
  bar.Write32(kDmaCount, count);
  bar.Write32(kDmaCmd,
              kDmaRun | (to_ram ? kDmaToRam : 0) | (irq ? kDmaIrq : 0));
  return WaitClear(bar, kDmaCmd, kDmaRun);
}

uint32_t AckIrq(const Bar& bar) {
  uint32_t s = bar.Read32(kIrqStatus);
  bar.Write32(kIrqAck, s);
  return s;
}

double Since(Clock::time_point t0, double scale) {
  return std::chrono::duration<double>(Clock::now() - t0).count() * scale;
}

// The kernel's line for vfio-pci's INTx handler ("vfio-intx(BDF)").
std::string IntxProcLine(const std::string& bdf) {
  auto text = ReadText("/proc/interrupts").value_or("");
  size_t at = text.find("vfio-intx(" + bdf + ")");
  if (at == std::string::npos) return "(no vfio-intx line in /proc/interrupts)";
  size_t b = text.rfind('\n', at);
  b = b == std::string::npos ? 0 : b + 1;
  std::string line = text.substr(b, text.find('\n', at) - b);
  std::string out;  // squeeze the column padding
  for (char c : line) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  return out;
}

void IntxRounds(const std::string& bdf, int dev, const Bar& bar, int rounds) {
  vfio_irq_info info{};
  info.argsz = sizeof(info);
  info.index = VFIO_PCI_INTX_IRQ_INDEX;
  bool have =
      ::ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &info) == 0 && info.count == 1;
  Report(have, "INTx irq info", "count %u flags 0x%x (want 1, maskable 0x%x)",
         info.count, info.flags, VFIO_IRQ_INFO_MASKABLE);
  if (!have) return;
  Fd efd(::eventfd(0, EFD_CLOEXEC));
  bool on = efd.get() >= 0 && SetIntx(dev, efd.get());
  Report(on, "INTx enabled", "VFIO_DEVICE_SET_IRQS INTx index, eventfd %d: %s",
         efd.get(), on ? "ok" : std::strerror(errno));
  if (!on) return;
  AckIrq(bar);
  for (int r = 1; r <= rounds; ++r) {
    uint32_t n = 4 + static_cast<uint32_t>(r);  // 5! .. 9!
    uint32_t want = 1;
    for (uint32_t k = 2; k <= n; ++k) want *= k;
    bar.Write32(kStatus, kStatusIrqFact);
    auto t0 = Clock::now();
    bar.Write32(kFactorial, n);
    uint64_t events = WaitEvent(efd.get());
    double ms = Since(t0, 1e3);
    bool done = WaitClear(bar, kStatus, kStatusComputing);
    uint32_t status = AckIrq(bar);  // edu drops its line once irq status is 0
    uint32_t result = bar.Read32(kFactorial);
    bool unmasked = UnmaskIntx(dev);
    int saved = errno;
    Report(
        events > 0 && done && result == want && (status & kIrqFact) && unmasked,
        ("intx round " + std::to_string(r)).c_str(),
        "%u! = %u, eventfd %llu after %.1f ms, irq status 0x%x, unmask %s", n,
        result, static_cast<unsigned long long>(events), ms, status,
        unmasked ? "ok" : std::strerror(saved));
    if (!events) break;  // masked for good: the next rounds would only time out
  }
  bar.Write32(kStatus, 0);
  Info("%s", IntxProcLine(bdf).c_str());
  SetIntx(dev, -1);
}

struct Stats {
  std::vector<double> v;
  void Print(const char* name, const char* unit) {
    if (v.empty()) return;
    std::sort(v.begin(), v.end());
    double med = v.size() % 2 ? v[v.size() / 2]
                              : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    std::printf("bench %s median=%.1f min=%.1f max=%.1f unit=%s n=%zu\n", name,
                med, v.front(), v.back(), unit, v.size());
    std::fflush(stdout);
  }
};

// Raw samples for bench/report, which takes the statistics of every way.
void PrintSamples(const char* metric, const std::string& way,
                  const std::vector<double>& v) {
  for (double x : v) std::printf("BENCH %s %s %.3f\n", metric, way.c_str(), x);
  std::fflush(stdout);
}

void Bench(const Bar& bar, int efd, const LowPages& pages, int n,
           const std::string& label) {
  Stats mmio, msi, dma;
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    (void)bar.Read32(kIdent);
    mmio.v.push_back(Since(t0, 1e9));
  }
  for (int i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    bar.Write32(kIrqRaise, 0x10000);
    uint64_t got = WaitEvent(efd);
    double us = Since(t0, 1e6);
    AckIrq(bar);
    if (!got) {
      Report(false, "bench MSI round trip", "no MSI within %d ms at %d",
             kTimeoutMs, i);
      break;
    }
    msi.v.push_back(us);
  }
  Stats mbps;
  for (int i = 0; i < std::min(n, label.empty() ? 5 : 20); ++i) {
    auto t0 = Clock::now();
    bool ok = Dma(bar, pages[0].pa, kEduBuffer, kXfer, false, false) &&
              Dma(bar, kEduBuffer, pages[1].pa, kXfer, true, false);
    if (!ok) break;
    dma.v.push_back(Since(t0, 1e3));
    mbps.v.push_back(2.0 * kXfer /
                     Since(t0, 1e6));  // bytes/us = MB/s: in and out
  }
  mmio.Print("mmio_read", "ns");
  msi.Print("msi_roundtrip", "us");
  dma.Print("dma_2k_roundtrip", "ms");
  if (label.empty()) return;
  PrintSamples("edu.msi_rtt", label, msi.v);
  PrintSamples("edu.dma", label, mbps.v);
}

// Reads kXfer bytes of physical memory at PA through an mmap of /dev/mem
// (allowed for addresses that are not RAM under STRICT_DEVMEM; read() of
// such an address fails with EFAULT), 32 bits at a time as devmem does.
std::optional<std::vector<uint8_t>> PeekPhys(uint64_t pa) {
  Fd fd(::open("/dev/mem", O_RDONLY | O_SYNC | O_CLOEXEC));
  void* p = fd.get() < 0
                ? MAP_FAILED
                : ::mmap(nullptr, kPage, PROT_READ, MAP_SHARED, fd.get(),
                         static_cast<off_t>(pa & ~(kPage - 1)));
  if (p == MAP_FAILED) {
    Info("/dev/mem at 0x%llx not mappable: %s",
         static_cast<unsigned long long>(pa), std::strerror(errno));
    return std::nullopt;
  }
  std::vector<uint8_t> buf(kXfer);
  auto* src = reinterpret_cast<volatile uint32_t*>(static_cast<uint8_t*>(p) +
                                                   (pa % kPage));
  for (size_t i = 0; i < kXfer / 4; ++i) {
    uint32_t v = src[i];
    std::memcpy(buf.data() + 4 * i, &v, 4);
  }
  ::munmap(p, kPage);
  return buf;
}

std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < n; ++i)
    std::snprintf(b, sizeof(b), "%02x", p[i]), s += b;
  return s;
}

void AttackDmaTo(const Bar& bar, const LowPages& pages, uint64_t gpa,
                 bool peek) {
  // The marker goes RAM -> edu buffer first (through a page we own).
  FillPattern(pages[0].va, kXfer, 0xA77AC4);
  bool loaded = Dma(bar, pages[0].pa, kEduBuffer, kXfer, false, false);
  auto before = peek ? PeekPhys(gpa) : std::nullopt;
  auto t0 = Clock::now();
  bool done = loaded && Dma(bar, kEduBuffer, gpa, kXfer, true, false);
  Info(
      "dma-to: edu wrote %u bytes of marker %s... to GPA 0x%llx: %s in %.1f ms",
      kXfer, Hex(pages[0].va, 8).c_str(), static_cast<unsigned long long>(gpa),
      done ? "completed" : "did not complete", Since(t0, 1e3));
  Report(done, "dma-to issued",
         "the edu accepted the DMA (whether it landed is the IOMMU's "
         "business: look for a DMAR fault on the host)");
  if (!peek) return;
  auto after = PeekPhys(gpa);
  if (!after) return;
  bool landed = std::memcmp(after->data(), pages[0].va, kXfer) == 0;
  Report(!landed, "dma-to did not land",
         "GPA 0x%llx reads %s... before, %s... after (marker %s)",
         static_cast<unsigned long long>(gpa),
         before ? Hex(before->data(), 8).c_str() : "?",
         Hex(after->data(), 8).c_str(), Hex(pages[0].va, 8).c_str());
}

void AttackDmaFrom(const Bar& bar, const LowPages& pages, uint64_t gpa) {
  FillPattern(pages[0].va, kXfer, 0xF00D);
  std::memset(pages[1].va, 0, kXfer);
  bool ok =
      Dma(bar, pages[0].pa, kEduBuffer, kXfer, false, false) &&  // marker in
      Dma(bar, gpa, kEduBuffer, kXfer, false, false) &&          // GPA over it
      Dma(bar, kEduBuffer, pages[1].pa, kXfer, true, false);     // back to RAM
  bool kept = std::memcmp(pages[0].va, pages[1].va, kXfer) == 0;
  Info(
      "dma-from: edu read %u bytes at GPA 0x%llx: %s; edu buffer now %s... "
      "(%s)",
      kXfer, static_cast<unsigned long long>(gpa),
      ok ? "completed" : "did not complete", Hex(pages[1].va, 16).c_str(),
      kept ? "unchanged: nothing was read" : "overwritten");
}

int Run(const std::string& bdf, bool intx, int bench, const std::string& label,
        std::optional<uint64_t> dma_to, bool peek,
        std::optional<uint64_t> dma_from) {
  Info("guest_edu on %s (kernel %s)", bdf.c_str(),
       ReadText("/proc/sys/kernel/osrelease").value_or("?").c_str());
  if (!PrepareVfio() || !BindVfioPci(bdf)) return 1;
  Vfio v;
  if (!OpenVfio(bdf, v)) return 1;
  int dev = v.device.get();

  // Memory decoding and bus mastering (DMA and MSI need it), through VFIO's
  // config region.
  uint16_t cmd = 0;
  auto cfg_off = static_cast<off_t>(v.config.offset + 0x04);
  bool cmd_ok = ::pread(dev, &cmd, 2, cfg_off) == 2;
  uint16_t want = cmd | kCmdMemory | kCmdMaster, now = 0;
  cmd_ok = cmd_ok && ::pwrite(dev, &want, 2, cfg_off) == 2 &&
           ::pread(dev, &now, 2, cfg_off) == 2;
  Report(cmd_ok && (now & kCmdMaster) && (now & kCmdMemory),
         "command memory+master", "0x%04x -> 0x%04x", cmd, now);

  volatile uint8_t* map = nullptr;
  if (v.bar0.flags & VFIO_REGION_INFO_FLAG_MMAP) {
    void* p = ::mmap(nullptr, v.bar0.size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     dev, static_cast<off_t>(v.bar0.offset));
    if (p != MAP_FAILED) map = static_cast<volatile uint8_t*>(p);
  }
  Info("BAR0 access: %s",
       map ? "mmap" : "pread/pwrite on the device fd (mmap refused)");
  Bar bar(dev, v.bar0.offset, map);

  uint32_t ident = bar.Read32(kIdent);
  Report(ident == 0x010000ed, "ident register", "0x%08x (want 0x010000ed)",
         ident);
  bar.Write32(kLiveness, 0x5eed1234);
  uint32_t inv = bar.Read32(kLiveness);
  Report(inv == ~0x5eed1234u, "liveness register",
         "wrote 0x5eed1234, read 0x%08x", inv);

  if (intx) {
    IntxRounds(bdf, dev, bar, 5);
    if (map) ::munmap(const_cast<uint8_t*>(map), v.bar0.size);
    return 0;
  }

  Fd efd(::eventfd(0, EFD_CLOEXEC));
  bool msi = efd.get() >= 0 && SetMsi(dev, efd.get());
  Report(msi, "MSI enabled", "VFIO_DEVICE_SET_IRQS MSI index, eventfd %d: %s",
         efd.get(), msi ? "ok" : std::strerror(errno));
  if (msi) {
    AckIrq(bar);
    bar.Write32(kStatus, kStatusIrqFact);
    auto t0 = Clock::now();
    bar.Write32(kFactorial, 10);
    uint64_t events = WaitEvent(efd.get());
    double ms = Since(t0, 1e3);
    bool done = WaitClear(bar, kStatus, kStatusComputing);
    uint32_t status = AckIrq(bar);
    uint32_t result = bar.Read32(kFactorial);
    bar.Write32(kStatus, 0);
    Report(events > 0 && done && result == 3628800 && (status & kIrqFact),
           "factorial with MSI",
           "10! = %u, eventfd %llu after %.1f ms, irq status 0x%x", result,
           static_cast<unsigned long long>(events), ms, status);
  }

  LowPages pages(2, kEduDmaLimit);
  Report(pages.ok(), "DMA pages",
         "%s (searched %zu MiB for pages below 0x%llx, edu's DMA reach)",
         pages.ok() ? "found" : "none", pages.searched_bytes() >> 20,
         static_cast<unsigned long long>(kEduDmaLimit));
  if (pages.ok()) {
    Info("DMA pages at physical 0x%llx and 0x%llx",
         static_cast<unsigned long long>(pages[0].pa),
         static_cast<unsigned long long>(pages[1].pa));
    FillPattern(pages[0].va, kXfer, 0x1234567);
    std::memset(pages[1].va, 0, kXfer);
    bool in = Dma(bar, pages[0].pa, kEduBuffer, kXfer, false, false);
    if (msi) AckIrq(bar), (void)WaitEvent(efd.get(), 0);
    auto t0 = Clock::now();
    bool out = in && Dma(bar, kEduBuffer, pages[1].pa, kXfer, true, msi);
    uint64_t events = msi ? WaitEvent(efd.get()) : 0;
    uint32_t status = msi ? AckIrq(bar) : 0;
    bool same = std::memcmp(pages[0].va, pages[1].va, kXfer) == 0;
    Report(in && out && same, "DMA round trip",
           "%u bytes RAM 0x%llx -> edu 0x40000 -> RAM "
           "0x%llx: %s (%.1f ms)",
           kXfer, static_cast<unsigned long long>(pages[0].pa),
           static_cast<unsigned long long>(pages[1].pa),
           !in || !out ? "timed out"
           : same      ? "identical"
                       : "DIFFERENT",
           Since(t0, 1e3));
    if (msi) {
      Report(events > 0 && (status & kIrqDma), "DMA completion MSI",
             "eventfd %llu, irq status 0x%x",
             static_cast<unsigned long long>(events), status);
    }
    if (bench > 0 && msi) Bench(bar, efd.get(), pages, bench, label);
    for (auto [gpa, to] :
         {std::pair{dma_to, true}, std::pair{dma_from, false}}) {
      if (!gpa) continue;
      if (*gpa + kXfer > kEduDmaLimit) {
        Report(false, to ? "dma-to" : "dma-from",
               "GPA 0x%llx is beyond edu's 28-bit DMA mask: edu would clamp it "
               "to 0x%llx "
               "(probably guest RAM). Use a guest smaller than 256 MiB and a "
               "GPA between its "
               "RAM and 0x%llx",
               static_cast<unsigned long long>(*gpa),
               static_cast<unsigned long long>(*gpa & (kEduDmaLimit - 1)),
               static_cast<unsigned long long>(kEduDmaLimit - kXfer));
      } else if (to) {
        AttackDmaTo(bar, pages, *gpa, peek);
      } else {
        AttackDmaFrom(bar, pages, *gpa);
      }
    }
  }
  if (msi) SetMsi(dev, -1);
  if (map) ::munmap(const_cast<uint8_t*>(map), v.bar0.size);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bdf;
  int bench = 0;
  std::string label;
  bool peek = false, intx = false;
  std::optional<uint64_t> dma_to, dma_from;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const char* next = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--bench" && next && ParseU64(next)) {
      bench = static_cast<int>(*ParseU64(argv[++i]));
    } else if (a == "--label" && next) {
      label = argv[++i];
    } else if (a == "--dma-to" && next && ParseU64(next)) {
      dma_to = ParseU64(argv[++i]);
    } else if (a == "--dma-from" && next && ParseU64(next)) {
      dma_from = ParseU64(argv[++i]);
    } else if (a == "--intx") {
      intx = true;
    } else if (a == "--peek") {
      peek = true;
    } else if (a[0] != '-' && bdf.empty()) {
      bdf = a;
    } else {
      std::fprintf(stderr,
                   "usage: guest_edu [BDF] [--intx] [--bench N [--label WAY]] "
                   "[--dma-to GPA [--peek]] "
                   "[--dma-from GPA]\n");
      return 2;
    }
  }
  if (bdf.empty()) {
    auto all = FindDevices(0x1234, 0x11e8);
    if (all.empty()) {
      Report(false, "find edu", "no 1234:11e8 device in %s", kSysPci.c_str());
      std::printf("guest_edu: %d checks, %d failed\n", g_checks, g_failures);
      return 1;
    }
    bdf = all.front();
  }
  Run(bdf, intx, bench, label, dma_to, peek, dma_from);
  std::printf("guest_edu: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
