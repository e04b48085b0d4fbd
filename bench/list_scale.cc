// Times the `devpass list` path over a synthetic host with 4096 PCI
// functions: 64 buses of 64 functions, IOMMU groups of 1-4 functions,
// a mix of drivers (some stubs, some unbound), SR-IOV PFs with VFs, NUMA
// nodes, one boot GPU. The tree has the kernel's sysfs layout (device
// directories under sys/devices, links under sys/bus/pci/devices, drivers,
// iommu_groups) and is written directly, without the gtest-based FakeHost.
//
// Measures, over N runs (default 7), median/min/max in ms of:
//   in-process: scan + names + host usage + assessment + JSON text, and the
//               steps alone (to see where time goes);
//   exec:       the built devpass binary, `devpass --root DIR list --json`,
// each with the median CPU time (user + system), which stays meaningful when
// other jobs compete for the cores.
//
// Usage: list_scale [--runs N] [--devices N] [--keep] [--bench-lines]
//   --bench-lines  also print every exec run as "BENCH list.devicesN devpass
//                  MS" for bench_report (bench/lab/run's table)

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "cli/list_view.h"
#include "host/assessment.h"
#include "host/host_usage.h"
#include "host/pci_names.h"
#include "host/pci_scan.h"

namespace fs = std::filesystem;
using devpass::Root;

namespace {

extern "C" char** environ;

void Put(const fs::path& p, const std::string& content) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::perror(p.c_str());
    std::exit(1);
  }
  if (::write(fd, content.data(), content.size()) !=
      static_cast<ssize_t>(content.size())) {
    std::perror(p.c_str());
    std::exit(1);
  }
  ::close(fd);
}

void Link(const fs::path& link, const fs::path& target) {
  fs::create_symlink(fs::relative(target, link.parent_path()), link);
}

struct Kind {
  uint16_t vendor, device;
  uint32_t class_code;
  const char* driver;  // "" = unbound
};

// A realistic spread of function kinds.
constexpr Kind kKinds[] = {
    {0x8086, 0x15b8, 0x020000, "e1000e"},
    {0x144d, 0xa808, 0x010802, "nvme"},
    {0x8086, 0xa36d, 0x0c0330, "xhci_hcd"},
    {0x10de, 0x2204, 0x030000, "vfio-pci"},
    {0x10de, 0x1aef, 0x040300, "vfio-pci"},
    {0x8086, 0xa348, 0x040300, "snd_hda_intel"},
    {0x1af4, 0x1041, 0x020000, ""},
    {0x8086, 0x1572, 0x020000, "i40e"},
    {0x8086, 0xa323, 0x0c0500, "i801_smbus"},
    {0x1b21, 0x1242, 0x0c0330, ""},
};

void BuildTree(const fs::path& dir, int count) {
  for (const char* d :
       {"sys/bus/pci/devices", "sys/bus/pci/drivers", "sys/kernel/iommu_groups",
        "sys/class/net", "sys/class/block", "sys/dev/block", "proc/self/net",
        "proc/net", "var/lib/devpass", "run"}) {
    fs::create_directories(dir / d);
  }
  Put(dir / "proc/self/mountinfo", "");
  Put(dir / "proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
  Put(dir / "proc/net/route", "Iface\tDestination\tGateway\n");
  for (const auto& k : kKinds) {
    if (*k.driver)
      fs::create_directories(dir / "sys/bus/pci/drivers" / k.driver);
  }
  fs::create_directories(dir / "sys/bus/pci/drivers/iavf");

  int group = 0, left_in_group = 0;
  std::string cfg(256, '\0');
  for (int i = 0; i < count; ++i) {
    int bus = 1 + i / 64, slot = (i % 64) / 8, fn = i % 8;
    std::string bdf = fmt::format("0000:{:02x}:{:02x}.{}", bus, slot, fn);
    fs::path root_bus = dir / fmt::format("sys/devices/pci0000:{:02x}", bus);
    fs::path dev = root_bus / bdf;
    fs::create_directories(dev);
    Link(dir / "sys/bus/pci/devices" / bdf, dev);

    // Every 32nd function is an SR-IOV VF of the function 8 before it.
    bool is_vf = i % 32 == 31;
    const Kind& k =
        is_vf ? Kind{0x8086, 0x154c, 0x020000, "iavf"} : kKinds[(i * 7) % 10];
    std::fill(cfg.begin(), cfg.end(), '\0');
    cfg[0] = static_cast<char>(k.vendor & 0xff);
    cfg[1] = static_cast<char>(k.vendor >> 8);
    cfg[2] = static_cast<char>(k.device & 0xff);
    cfg[3] = static_cast<char>(k.device >> 8);
    cfg[9] = static_cast<char>(k.class_code & 0xff);
    cfg[10] = static_cast<char>((k.class_code >> 8) & 0xff);
    cfg[11] = static_cast<char>(k.class_code >> 16);
    cfg[0x0e] = static_cast<char>(fn == 0 ? 0x80 : 0x00);
    Put(dev / "config", cfg);
    Put(dev / "vendor", fmt::format("0x{:04x}\n", k.vendor));
    Put(dev / "device", fmt::format("0x{:04x}\n", k.device));
    Put(dev / "class", fmt::format("0x{:06x}\n", k.class_code));
    Put(dev / "driver_override", "(null)\n");
    Put(dev / "numa_node", fmt::format("{}\n", bus <= 32 ? 0 : 1));
    Put(dev / "resource",
        "0x00000000fe000000 0x00000000fe0fffff 0x0000000000040200\n");
    if (k.class_code >> 16 == 0x03)
      Put(dev / "boot_vga", i == 3 ? "1\n" : "0\n");
    if (*k.driver) {
      fs::path drv = dir / "sys/bus/pci/drivers" / k.driver;
      Link(dev / "driver", drv);
      Link(drv / bdf, dev);
    }
    if (is_vf) {
      fs::path pf =
          root_bus / fmt::format("0000:{:02x}:{:02x}.{}", bus, slot - 1, fn);
      Link(dev / "physfn", pf);
      Link(pf / "virtfn0", dev);
      Put(pf / "sriov_totalvfs", "8\n");
      Put(pf / "sriov_numvfs", "1\n");
    }
    // Groups of 1-4 functions, sizes cycling 1, 2, 3, 4.
    if (left_in_group == 0) {
      ++group;
      left_in_group = 1 + group % 4;
      fs::create_directories(
          dir / fmt::format("sys/kernel/iommu_groups/{}/devices", group));
    }
    --left_in_group;
    fs::path g = dir / fmt::format("sys/kernel/iommu_groups/{}", group);
    Link(g / "devices" / bdf, dev);
    Link(dev / "iommu_group", g);
  }
}

struct Stats {
  double median, min, max;
  double cpu_median;  // user + system CPU time: what the work costs when the
                      // machine is shared, independent of waiting for a core
  std::vector<double> samples;  // wall ms, in run order
};

double CpuMs(int who) {
  struct rusage ru {};
  ::getrusage(who, &ru);
  auto ms = [](const timeval& tv) {
    return tv.tv_sec * 1e3 + tv.tv_usec / 1e3;
  };
  return ms(ru.ru_utime) + ms(ru.ru_stime);
}

Stats Measure(int runs, const std::function<void()>& fn,
              int who = RUSAGE_SELF) {
  std::vector<double> ms, cpu;
  for (int i = 0; i < runs; ++i) {
    double c0 = CpuMs(who);
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    cpu.push_back(CpuMs(who) - c0);
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::vector<double> samples = ms;
  std::sort(ms.begin(), ms.end());
  std::sort(cpu.begin(), cpu.end());
  return {ms[ms.size() / 2], ms.front(), ms.back(), cpu[cpu.size() / 2],
          std::move(samples)};
}

void Report(const char* what, const Stats& s) {
  std::printf("%-46s median %6.1f ms  min %6.1f  max %6.1f  (cpu %6.1f ms)\n",
              what, s.median, s.min, s.max, s.cpu_median);
}

int RunDevpass(const fs::path& root) {
  std::string root_arg = root.string();
  const char* argv[] = {DEVPASS_BINARY, "--root", root_arg.c_str(),
                        "list",         "--json", nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, DEVPASS_BINARY, &actions, nullptr,
                       const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 7, devices = 4096;
  bool keep = false, bench_lines = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc)
      runs = std::atoi(argv[++i]);
    else if (a == "--devices" && i + 1 < argc)
      devices = std::atoi(argv[++i]);
    else if (a == "--keep")
      keep = true;
    else if (a == "--bench-lines")
      bench_lines = true;
  }
  std::string tmpl =
      (fs::temp_directory_path() / "devpass-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return 1;
  fs::path dir = tmpl;
  auto tb0 = std::chrono::steady_clock::now();
  BuildTree(dir, devices);
  auto tb1 = std::chrono::steady_clock::now();
  std::printf("fake host with %d PCI functions in %s (built in %.0f ms)\n",
              devices, dir.c_str(),
              std::chrono::duration<double, std::milli>(tb1 - tb0).count());
  Root root(dir);

  // Sanity: the list sees every device.
  auto listing = devpass::cli::BuildListing(root, {});
  if (!listing || listing->devices.size() != static_cast<size_t>(devices)) {
    std::fprintf(stderr, "listing failed or incomplete\n");
    return 1;
  }
  size_t assignable = 0;
  for (const auto& d : listing->devices) assignable += d.assessment.assignable;
  std::printf("listed %zu devices, %zu assignable; %d runs each\n\n",
              listing->devices.size(), assignable, runs);

  size_t sink = 0;
  Report("full list path (scan+names+usage+assess+JSON)", Measure(runs, [&] {
           auto l = devpass::cli::BuildListing(root, {});
           sink += devpass::cli::ListJsonText(*l).size();
         }));
  Report("  text table instead of JSON", Measure(runs, [&] {
           auto l = devpass::cli::BuildListing(root, {});
           sink += devpass::cli::ListText(*l).size();
         }));
  Report("  scan only (ScanPciDevices)", Measure(runs, [&] {
           sink += devpass::host::ScanPciDevices(root)->size();
         }));
  Report("  pci.ids load (PciNames::Preload)", Measure(runs, [&] {
           devpass::host::PciNames names(root);
           names.Preload();
           sink += names.Vendor(0x8086).size();
         }));
  Report("  host usage (HostUsage::Scan)", Measure(runs, [&] {
           sink += devpass::host::HostUsage::Scan(root)->all().size();
         }));
  auto scanned = *devpass::host::ScanPciDevices(root);
  devpass::host::HostUsage usage;
  Report("  assessment (AssessDevices)", Measure(runs, [&] {
           sink += devpass::host::AssessDevices(scanned, usage, {}).size();
         }));
  Report("  JSON text (ListJsonText, what list prints)", Measure(runs, [&] {
           sink += devpass::cli::ListJsonText(*listing).size();
         }));
  Report("  JSON via nlohmann (ListJson + dump(2))", Measure(runs, [&] {
           sink += devpass::cli::ListJson(*listing).dump(2).size();
         }));
  int exec_rc = 0;
  Stats exec = Measure(
      runs, [&] { exec_rc |= RunDevpass(dir); }, RUSAGE_CHILDREN);
  Report("exec: devpass --root DIR list --json", exec);
  if (bench_lines) {
    for (double ms : exec.samples)
      std::printf("BENCH list.devices%d devpass %.3f\n", devices, ms);
  }
  if (exec_rc != 0)
    std::printf("warning: devpass exited with a non-zero status\n");
  if (!keep) fs::remove_all(dir);
  return sink == 0 ? 1 : 0;
}
