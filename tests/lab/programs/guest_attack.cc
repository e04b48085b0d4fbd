// guest_attack: what a hostile guest can try with a device it was given, so
// the lab can prove the VMM does not let it through. Each subcommand prints
// what it tried ("tried ..."), what it saw ("observed ..."), and a verdict:
//   exit 0  BLOCKED       the attack had no effect
//   exit 1  LANDED        the attack worked (memory changed / device hijacked)
//   exit 2  usage or setup error (nothing tried)
//   exit 3  INCONCLUSIVE  tried, but could not make the device act
// Natively on a lab host without protection (intel_iommu=off, or an iommu=pt
// identity domain) LANDED is the expected positive control.
//
//   guest_attack bar-onto-ram BDF [OTHER_EDU_BDF]
//     Moves BDF's BAR0 (config space, memory decode on) onto a RAM page of
//     ours filled with a pattern; the page must keep its contents, reads and
//     writes (a VMM must not map the BAR over guest RAM). BAR0 and the
//     command register are restored. Any memory BAR0 will do. With
//     OTHER_EDU_BDF, bar-onto-bar follows; the exit status is the worse.
//   guest_attack bar-onto-bar EDU_BDF OTHER_EDU_BDF
//     Moves EDU_BDF's BAR0 onto OTHER's BAR0 window: OTHER must still answer
//     there (its liveness register returns its own token, not EDU_BDF's).
//     Note: on a real bus, and under QEMU, overlapping BARs of one's own
//     devices is undefined and the moved one wins (LANDED); what a VMM owes
//     here is a policy decision, not an isolation property.
//   guest_attack msix-redirect BDF
//     Programs MSI-X entry 0 (through an mmap of the table's BAR via sysfs)
//     with address = a RAM page of ours (not 0xFEExxxxx) and a magic data
//     word, unmasks it, enables MSI-X and bus mastering, and makes the device
//     signal vector 0 (e1000e: IVAR/IMS/ICS; other devices: not triggered,
//     INCONCLUSIVE). The page must stay unchanged. Unbinds BDF's driver first
//     (it holds the BAR), restores everything and rebinds it afterwards.
//
// Physical addresses come from /proc/self/pagemap (root). Standalone: no
// devpass code (see guest_common.h).
#include <chrono>
#include <memory>
#include <thread>

#include "guest_common.h"

namespace {

using namespace guest;

enum Verdict { kBlocked = 0, kLanded = 1, kUsage = 2, kInconclusive = 3 };

// Of two verdicts, the one to exit with: LANDED first.
Verdict Worse(Verdict a, Verdict b) {
  auto rank = [](Verdict v) {
    return v == kLanded ? 3 : v == kUsage ? 2 : v == kInconclusive;
  };
  return rank(a) >= rank(b) ? a : b;
}

// One "verdict" line per attack; the exit status is the worst of them.
Verdict Report(Verdict v, const char* what) {
  static const char* const kNames[] = {"BLOCKED", "LANDED", "ERROR",
                                       "INCONCLUSIVE"};
  std::printf("verdict %s: %s\n", kNames[v], what);
  std::fflush(stdout);
  return v;
}

void SleepMs(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// A page-locked page of ours with its physical address and a known pattern.
struct RamPage {
  LowPages pages{1, ~0ULL >> 1};
  std::vector<uint8_t> want = std::vector<uint8_t>(kPage);
  explicit RamPage(uint32_t seed) {
    if (pages.ok()) {
      FillPattern(pages[0].va, kPage, seed);
      std::memcpy(want.data(), pages[0].va, kPage);
    }
  }
  bool ok() const { return pages.ok(); }
  uint64_t pa() const { return pages[0].pa; }
  volatile uint8_t* va() const { return pages[0].va; }
  // Offset of the first byte that differs from the pattern, -1 if none.
  long FirstChange() const {
    for (size_t i = 0; i < kPage; ++i) {
      if (va()[i] != want[i]) return static_cast<long>(i);
    }
    return -1;
  }
};

// BAR0 as config space holds it: value(s), 64-bit or not, size.
struct BarReg {
  uint32_t lo = 0, hi = 0;
  bool is64 = false, io = false;
  uint64_t size = 0;
  uint64_t addr() const {
    return (static_cast<uint64_t>(hi) << 32) | (lo & ~0xfULL);
  }
};

BarReg ReadBar0(const SysfsConfig& cfg) {
  BarReg b;
  b.lo = cfg.Read<uint32_t>(0x10);
  b.io = b.lo & 1;
  b.is64 = !b.io && ((b.lo >> 1) & 3) == 2;
  if (b.is64) b.hi = cfg.Read<uint32_t>(0x14);
  return b;
}

void WriteBar0(const SysfsConfig& cfg, const BarReg& orig, uint64_t addr) {
  cfg.Write<uint32_t>(0x10, static_cast<uint32_t>(addr) | (orig.lo & 0xf));
  if (orig.is64) cfg.Write<uint32_t>(0x14, static_cast<uint32_t>(addr >> 32));
}

void RestoreBar0(const SysfsConfig& cfg, const BarReg& orig) {
  cfg.Write<uint32_t>(0x10, orig.lo);
  if (orig.is64) cfg.Write<uint32_t>(0x14, orig.hi);
}

std::string Hex64(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof(b), "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// BAR0 of BDF onto a RAM page of ours: the page must keep its contents and
// take writes. kBlocked or kLanded (kUsage if it cannot try).
Verdict BarOntoRam(const std::string& bdf) {
  SysfsConfig cfg(bdf);
  if (!cfg.ok())
    return Report(kUsage, ("cannot open config space of " + bdf).c_str());
  BarReg bar = ReadBar0(cfg);
  if (bar.io || bar.addr() == 0)
    return Report(kUsage, "BAR0 is not an assigned memory BAR");
  uint16_t cmd = cfg.Read<uint16_t>(0x04);
  RamPage page(0xBA5EBA11);
  if (!page.ok())
    return Report(kUsage,
                  "no page-locked page with a physical address (root?)");
  if (!bar.is64 && page.pa() >= (1ULL << 32)) {
    return Report(kUsage, "BAR0 is 32-bit and our page is above 4 GiB");
  }
  std::printf(
      "info %s BAR0 %s%s, command 0x%04x; our RAM page at physical %s\n",
      bdf.c_str(), Hex64(bar.addr()).c_str(), bar.is64 ? " (64-bit)" : "", cmd,
      Hex64(page.pa()).c_str());
  // The BAR's size aligns it down: the window covers our page whatever its
  // size.
  std::printf("tried: BAR0 of %s := %s (our RAM page), memory decode on\n",
              bdf.c_str(), Hex64(page.pa()).c_str());
  cfg.Write<uint16_t>(0x04, cmd | kCmdMemory);
  WriteBar0(cfg, bar, page.pa());
  BarReg moved = ReadBar0(cfg);
  SleepMs(200);
  long changed = page.FirstChange();
  // Writes must still reach RAM too.
  page.va()[8] = static_cast<uint8_t>(page.want[8] ^ 0xff);
  bool wrote = page.va()[8] == static_cast<uint8_t>(page.want[8] ^ 0xff);
  page.va()[8] = page.want[8];
  std::printf("observed: BAR0 reads back %s; page %s; a write to it %s\n",
              Hex64(moved.addr()).c_str(),
              changed < 0
                  ? "unchanged"
                  : ("CHANGED at offset " + std::to_string(changed)).c_str(),
              wrote ? "reads back" : "DID NOT read back");
  RestoreBar0(cfg, bar);
  cfg.Write<uint16_t>(0x04, cmd);
  SleepMs(50);
  long after = page.FirstChange();
  std::printf("observed: after restoring BAR0 (%s): page %s\n",
              Hex64(ReadBar0(cfg).addr()).c_str(),
              after < 0 ? "unchanged" : "CHANGED");
  return changed >= 0 || !wrote || after >= 0
             ? Report(kLanded, "the BAR moved over RAM took effect")
             : Report(kBlocked,
                      "guest RAM kept its contents under the moved BAR");
}

// BAR0 of BDF onto the BAR0 window of OTHER (both edus): OTHER must still
// answer there with its own state (edu keeps ~value in its liveness register,
// so each device gets its own token).
Verdict BarOntoBar(const std::string& bdf, const std::string& other) {
  SysfsConfig cfg(bdf), ocfg(other);
  BarReg bar = ReadBar0(cfg), obar = ReadBar0(ocfg);
  if (!cfg.ok() || !ocfg.ok() || DeviceId(bdf) != 0x123411e8 ||
      DeviceId(other) != 0x123411e8 || bar.io || obar.io || !bar.addr() ||
      !obar.addr()) {
    return Report(kUsage, "both devices must be edus with an assigned BAR0");
  }
  ResourceMap mine(bdf, 0), theirs(other, 0);
  if (!mine.ok() || !theirs.ok()) {
    return Report(kUsage, (mine.error() + " " + theirs.error()).c_str());
  }
  uint16_t cmd = cfg.Read<uint16_t>(0x04), ocmd = ocfg.Read<uint16_t>(0x04);
  ocfg.Write<uint16_t>(0x04, ocmd | kCmdMemory);
  cfg.Write<uint16_t>(0x04, cmd | kCmdMemory);
  const uint32_t kMine = 0x11110000, kTheirs = 0x22220000;
  mine.Write32(0x04, kMine);
  theirs.Write32(0x04, kTheirs);
  std::printf("info %s answers ident 0x%08x liveness 0x%08x at %s before\n",
              other.c_str(), theirs.Read32(0), theirs.Read32(0x04),
              Hex64(obar.addr()).c_str());
  std::printf("tried: BAR0 of %s := %s (%s's BAR0 window)\n", bdf.c_str(),
              Hex64(obar.addr()).c_str(), other.c_str());
  WriteBar0(cfg, bar, obar.addr());
  SleepMs(200);
  uint32_t ident = theirs.Read32(0), live = theirs.Read32(0x04);
  const char* who = live == ~kTheirs ? "still itself"
                    : live == ~kMine ? "HIJACKED: the moved device answers"
                                     : "SILENT or garbled";
  std::printf("observed: %s's window reads ident 0x%08x liveness 0x%08x: %s\n",
              other.c_str(), ident, live, who);
  RestoreBar0(cfg, bar);
  SleepMs(50);
  std::printf(
      "observed: after restoring, %s liveness 0x%08x, %s liveness 0x%08x\n",
      other.c_str(), theirs.Read32(0x04), bdf.c_str(), mine.Read32(0x04));
  cfg.Write<uint16_t>(0x04, cmd);
  ocfg.Write<uint16_t>(0x04, ocmd);
  return live == ~kTheirs && ident == 0x010000ed
             ? Report(kBlocked, "the other device kept its window")
             : Report(kLanded,
                      "the moved BAR took over the other device's window");
}

// e1000e (QEMU hw/net/e1000e_core.c, Intel 82574 datasheet 10.2.4): IVAR
// maps a cause to an MSI-X vector (4 bits per cause: vector, bit 3 valid;
// RxQ0 in bits 3:0, "other" in 19:16); a cause set in ICS and enabled in IMS
// then signals that vector.
constexpr size_t kIcr = 0xC0, kIcs = 0xC8, kIms = 0xD0, kImc = 0xD8,
                 kIvar = 0xE4;
constexpr uint32_t kIcrRxq0 = 0x00100000;

Verdict MsixRedirect(const std::string& bdf) {
  SysfsConfig cfg(bdf);
  if (!cfg.ok())
    return Report(kUsage, ("cannot open config space of " + bdf).c_str());
  unsigned cap = cfg.FindCap(0x11);
  if (!cap) return Report(kUsage, "no MSI-X capability");
  uint16_t ctrl = cfg.Read<uint16_t>(cap + 2);
  uint32_t table = cfg.Read<uint32_t>(cap + 4);
  int bir = static_cast<int>(table & 7);
  size_t toff = table & ~7u;
  std::printf(
      "info %s MSI-X cap at 0x%x: %u vectors, table BAR%d+0x%zx, control "
      "0x%04x\n",
      bdf.c_str(), cap, (ctrl & 0x7ff) + 1, bir, toff, ctrl);

  std::string driver = LinkName(DevPath(bdf) + "/driver");
  if (!driver.empty()) {
    WriteText(DevPath(bdf) + "/driver/unbind", bdf);
    std::printf("info unbound %s from %s (it holds the BARs)\n", bdf.c_str(),
                driver.c_str());
  }
  auto rebind = [&] {
    if (!driver.empty()) {
      bool ok = WriteText("/sys/bus/pci/drivers/" + driver + "/bind", bdf);
      std::printf("info rebound %s to %s: %s\n", bdf.c_str(), driver.c_str(),
                  ok ? "ok" : std::strerror(errno));
    }
  };
  uint16_t cmd = cfg.Read<uint16_t>(0x04);
  cfg.Write<uint16_t>(0x04, cmd | kCmdMemory | kCmdMaster);
  ResourceMap tbar(bdf, bir);
  RamPage page(0x5EC7E1);
  if (!tbar.ok() || !page.ok() || toff + 16 > tbar.size()) {
    cfg.Write<uint16_t>(0x04, cmd);
    rebind();
    return Report(kUsage, tbar.ok() ? "no page-locked page (root?)"
                                    : tbar.error().c_str());
  }
  // The message goes 0x100 into our page: a dword write the device makes.
  uint64_t target = page.pa() + 0x100;
  const uint32_t kMagic = 0xA77AC0DE;
  uint32_t saved[4];
  for (int i = 0; i < 4; ++i) saved[i] = tbar.Read32(toff + 4 * i);
  std::printf(
      "tried: MSI-X entry 0 := address %s data 0x%08x, unmasked (was %08x %08x "
      "%08x "
      "%08x); MSI-X enabled, bus master on\n",
      Hex64(target).c_str(), kMagic, saved[0], saved[1], saved[2], saved[3]);
  tbar.Write32(toff + 12, 1);  // mask while programming
  tbar.Write32(toff + 0, static_cast<uint32_t>(target));
  tbar.Write32(toff + 4, static_cast<uint32_t>(target >> 32));
  tbar.Write32(toff + 8, kMagic);
  cfg.Write<uint16_t>(
      cap + 2, static_cast<uint16_t>((ctrl | 0x8000) &
                                     ~0x4000));  // enable, unmask function
  tbar.Write32(toff + 12, 0);
  std::printf("observed: entry 0 reads back %08x %08x %08x %08x\n",
              tbar.Read32(toff), tbar.Read32(toff + 4), tbar.Read32(toff + 8),
              tbar.Read32(toff + 12));

  Verdict verdict = kInconclusive;
  bool triggered = false;
  uint32_t old_ivar = 0;
  std::unique_ptr<ResourceMap> regs;
  if (DeviceId(bdf) == 0x808610d3) {
    regs = std::make_unique<ResourceMap>(bdf, 0);
    if (regs->ok()) {
      old_ivar = regs->Read32(kIvar);
      (void)regs->Read32(kIcr);  // clear pending causes
      regs->Write32(kIvar,
                    0x8 | (0x8 << 16));  // RxQ0 and "other" -> vector 0, valid
      regs->Write32(kIms, kIcrRxq0);
      regs->Write32(kIcs, kIcrRxq0);
      triggered = true;
      std::printf(
          "tried: e1000e IVAR := 0x00080008, IMS := RxQ0, ICS := RxQ0 (raise "
          "vector 0)\n");
    } else {
      std::printf("info e1000e registers not mappable: %s\n",
                  regs->error().c_str());
    }
  } else {
    std::printf(
        "info no way to make %04x:%04x raise a vector: only the table was "
        "programmed\n",
        DeviceId(bdf) >> 16, DeviceId(bdf) & 0xffff);
  }
  SleepMs(300);
  long changed = page.FirstChange();
  uint32_t at = *reinterpret_cast<volatile uint32_t*>(page.va() + 0x100);
  if (changed >= 0) {
    std::printf(
        "observed: our page CHANGED at offset 0x%lx; dword at 0x100 = "
        "0x%08x%s\n",
        changed, at, at == kMagic ? " (the MSI data)" : "");
    verdict = kLanded;
  } else {
    std::printf("observed: our page unchanged (dword at 0x100 = 0x%08x)\n", at);
    if (triggered) verdict = kBlocked;
  }
  if (regs && regs->ok()) {
    std::printf("observed: e1000e ICR now 0x%08x\n", regs->Read32(kIcr));
    regs->Write32(kImc, ~0u);
    regs->Write32(kIvar, old_ivar);
  }
  // Restore: mask, old entry, MSI-X control, command; then the driver.
  tbar.Write32(toff + 12, 1);
  for (int i = 0; i < 3; ++i) tbar.Write32(toff + 4 * i, saved[i]);
  cfg.Write<uint16_t>(cap + 2, ctrl);
  tbar.Write32(toff + 12, saved[3]);
  cfg.Write<uint16_t>(0x04, cmd);
  regs.reset();
  rebind();
  return Report(verdict, verdict == kBlocked
                             ? "the MSI-X message did not reach guest RAM"
                         : verdict == kLanded
                             ? "the device wrote its MSI-X message into RAM"
                             : "the device was not made to send the message");
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "bar-onto-ram" && (argc == 3 || argc == 4)) {
    Verdict v = BarOntoRam(argv[2]);
    if (argc == 4 && v != kUsage) v = Worse(v, BarOntoBar(argv[2], argv[3]));
    return v;
  }
  if (cmd == "bar-onto-bar" && argc == 4) return BarOntoBar(argv[2], argv[3]);
  if (cmd == "msix-redirect" && argc == 3) return MsixRedirect(argv[2]);
  std::fprintf(stderr,
               "usage: guest_attack bar-onto-ram BDF [OTHER_EDU_BDF]\n"
               "       guest_attack bar-onto-bar EDU_BDF OTHER_EDU_BDF\n"
               "       guest_attack msix-redirect BDF\n"
               "exit: 0 blocked, 1 landed, 2 error, 3 inconclusive (several "
               "attacks: the "
               "worst)\n");
  return kUsage;
}
