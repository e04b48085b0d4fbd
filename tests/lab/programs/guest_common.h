// Helpers shared by the guest programs (guest_edu.cc, guest_attack.cc).
//
// These programs model "the guest's own driver": they run inside a nested
// guest (or natively on the lab host as a baseline) and talk to the kernel
// directly (sysfs, /proc/self/pagemap, raw VFIO ioctls). They deliberately do
// NOT link devpass's libraries: a guest knows nothing about devpass. They are
// built static by tests/lab/build, so they run in a busybox-only initramfs.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace guest {

// ---------------------------------------------------------------- output
// One line per check: "ok NAME: detail" or "FAIL NAME: detail"; "info ..."
// for observations that are not a verdict. Flushed at once: the console of a
// guest that dies must still show how far it got.
inline int g_checks = 0;
inline int g_failures = 0;

[[gnu::format(printf, 3, 4)]] inline void Report(bool ok, const char* name,
                                                 const char* fmt, ...) {
  ++g_checks;
  if (!ok) ++g_failures;
  char detail[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  std::printf("%s %s: %s\n", ok ? "ok" : "FAIL", name, detail);
  std::fflush(stdout);
}

[[gnu::format(printf, 1, 2)]] inline void Info(const char* fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  std::printf("info %s\n", text);
  std::fflush(stdout);
}

// ---------------------------------------------------------------- files
inline std::optional<std::string> ReadText(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n < 0) return std::nullopt;
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Writes TEXT to a sysfs attribute; false (errno kept) on failure.
inline bool WriteText(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, text.data(), text.size());
  int saved = errno;
  ::close(fd);
  errno = saved;
  return n == static_cast<ssize_t>(text.size());
}

inline std::string Basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The name of the symlink target (driver, iommu_group), empty if none.
inline std::string LinkName(const std::string& path) {
  char buf[512];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  return Basename(std::string(buf, static_cast<size_t>(n)));
}

inline bool Exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

inline std::optional<uint64_t> ParseU64(const char* s) {
  if (!s || !*s) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 0);
  if (errno || *end) return std::nullopt;
  return v;
}

// ---------------------------------------------------------------- PCI
inline const std::string kSysPci = "/sys/bus/pci/devices/";

inline std::string DevPath(const std::string& bdf) { return kSysPci + bdf; }

inline std::optional<unsigned> ReadHexAttr(const std::string& path) {
  auto t = ReadText(path);
  if (!t) return std::nullopt;
  auto v = ParseU64(t->c_str());
  if (!v) return std::nullopt;
  return static_cast<unsigned>(*v);
}

// Every device VENDOR:DEVICE, in BDF order.
inline std::vector<std::string> FindDevices(unsigned vendor, unsigned device) {
  std::vector<std::string> out;
  DIR* d = ::opendir(kSysPci.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string bdf = e->d_name;
    if (ReadHexAttr(DevPath(bdf) + "/vendor") == vendor &&
        ReadHexAttr(DevPath(bdf) + "/device") == device) {
      out.push_back(bdf);
    }
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

inline unsigned DeviceId(const std::string& bdf) {
  return (ReadHexAttr(DevPath(bdf) + "/vendor").value_or(0) << 16) |
         ReadHexAttr(DevPath(bdf) + "/device").value_or(0);
}

// Config space through sysfs (root may read and write all of it).
class SysfsConfig {
 public:
  explicit SysfsConfig(const std::string& bdf)
      : fd_(::open((DevPath(bdf) + "/config").c_str(), O_RDWR | O_CLOEXEC)) {}
  ~SysfsConfig() {
    if (fd_ >= 0) ::close(fd_);
  }
  SysfsConfig(const SysfsConfig&) = delete;
  SysfsConfig& operator=(const SysfsConfig&) = delete;
  bool ok() const { return fd_ >= 0; }
  template <typename T>
  T Read(unsigned off) const {
    T v{};
    if (::pread(fd_, &v, sizeof(v), off) != static_cast<ssize_t>(sizeof(v)))
      v = T(~T{});
    return v;
  }
  template <typename T>
  bool Write(unsigned off, T v) const {
    return ::pwrite(fd_, &v, sizeof(v), off) == static_cast<ssize_t>(sizeof(v));
  }
  // Offset of capability ID in the standard list, 0 if absent.
  unsigned FindCap(uint8_t id) const {
    if (!(Read<uint16_t>(0x06) & 0x10)) return 0;  // Status: capabilities list
    unsigned pos = Read<uint8_t>(0x34) & ~3u;
    for (int guard = 0; pos >= 0x40 && guard < 48; ++guard) {
      if (Read<uint8_t>(pos) == id) return pos;
      pos = Read<uint8_t>(pos + 1) & ~3u;
    }
    return 0;
  }

 private:
  int fd_;
};

// PCI_COMMAND bits.
constexpr uint16_t kCmdMemory = 0x2, kCmdMaster = 0x4;

// Size of BAR N as the kernel assigned it (sysfs "resource": one
// "start end flags" line per resource), 0 if unassigned.
inline off_t ResourceSize(const std::string& bdf, int bar) {
  FILE* f = std::fopen((DevPath(bdf) + "/resource").c_str(), "re");
  if (!f) return 0;
  unsigned long long start = 0, end = 0, flags = 0;
  for (int i = 0; i <= bar; ++i) {
    if (std::fscanf(f, "%llx %llx %llx", &start, &end, &flags) != 3)
      start = end = 0;
  }
  std::fclose(f);
  return end > start ? static_cast<off_t>(end - start + 1) : 0;
}

// An mmap of /sys/bus/pci/devices/BDF/resourceN (the BAR as the kernel
// assigned it). Refused while a driver holds the region (IO_STRICT_DEVMEM).
class ResourceMap {
 public:
  ResourceMap(const std::string& bdf, int bar) {
    std::string path = DevPath(bdf) + "/resource" + std::to_string(bar);
    int fd = ::open(path.c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
    if (fd < 0) {
      error_ = path + ": " + std::strerror(errno);
      return;
    }
    off_t size = ResourceSize(bdf, bar);
    errno = EINVAL;  // an unassigned BAR: size 0
    void* p = size > 0 ? ::mmap(nullptr, static_cast<size_t>(size),
                                PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                       : MAP_FAILED;
    if (p == MAP_FAILED) {
      error_ = "mmap " + path + ": " + std::strerror(errno);
    } else {
      base_ = static_cast<volatile uint8_t*>(p);
      size_ = static_cast<size_t>(size);
    }
    ::close(fd);
  }
  ~ResourceMap() {
    if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
  }
  ResourceMap(const ResourceMap&) = delete;
  ResourceMap& operator=(const ResourceMap&) = delete;
  bool ok() const { return base_ != nullptr; }
  const std::string& error() const { return error_; }
  size_t size() const { return size_; }
  uint32_t Read32(size_t off) const {
    return *reinterpret_cast<volatile uint32_t*>(base_ + off);
  }
  void Write32(size_t off, uint32_t v) const {
    *reinterpret_cast<volatile uint32_t*>(base_ + off) = v;
  }

 private:
  volatile uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::string error_;
};

// ---------------------------------------------------------------- memory
constexpr size_t kPage = 4096;

// Physical (guest-physical in a guest) address of the page holding VA, from
// /proc/self/pagemap: bit 63 present, bits 0-54 the PFN. The PFN reads as 0
// without CAP_SYS_ADMIN. 0 on failure.
inline uint64_t PhysAddr(const void* va) {
  int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t entry = 0;
  auto vpn = reinterpret_cast<uintptr_t>(va) / kPage;
  ssize_t n = ::pread(fd, &entry, sizeof(entry),
                      static_cast<off_t>(vpn * sizeof(entry)));
  ::close(fd);
  if (n != sizeof(entry) || !(entry & (1ULL << 63))) return 0;
  uint64_t pfn = entry & ((1ULL << 55) - 1);
  return pfn ? pfn * kPage + reinterpret_cast<uintptr_t>(va) % kPage : 0;
}

// MemAvailable from /proc/meminfo, in bytes (0 if unknown).
inline uint64_t MemAvailable() {
  FILE* f = std::fopen("/proc/meminfo", "re");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}

// Page-locked pages whose physical addresses are all below LIMIT (a device's
// DMA reach: edu masks DMA addresses to 28 bits, so a higher address would be
// silently clamped onto someone else's memory). Grabs 2 MiB chunks until
// enough qualifying pages are found (at most all but 128 MiB of the memory
// available), then gives back the chunks it did not use. Empty on failure.
class LowPages {
 public:
  LowPages(size_t count, uint64_t limit) {
    constexpr size_t kChunk = 2u << 20;
    uint64_t avail = MemAvailable();
    size_t max_bytes = avail > (128u << 20)
                           ? static_cast<size_t>(avail - (128u << 20))
                           : kChunk;
    for (size_t total = 0; pages_.size() < count && total < max_bytes;
         total += kChunk) {
      void* p = ::mmap(nullptr, kChunk, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
      if (p == MAP_FAILED) break;
      ::madvise(p, kChunk, MADV_NOHUGEPAGE);
      if (::mlock(p, kChunk) != 0) {
        ::munmap(p, kChunk);
        break;
      }
      bool used = false;
      for (size_t off = 0; off < kChunk && pages_.size() < count;
           off += kPage) {
        auto* va = static_cast<uint8_t*>(p) + off;
        va[0] = 1;  // touch (already populated; keeps it resident)
        uint64_t pa = PhysAddr(va);
        if (pa && pa + kPage <= limit) {
          pages_.push_back({va, pa});
          used = true;
        }
      }
      chunks_.push_back({p, used});
      searched_ += kChunk;
    }
    for (auto& c : chunks_) {
      if (!c.used) ::munmap(c.base, kChunk), c.base = nullptr;
    }
    if (pages_.size() < count) pages_.clear();
  }
  ~LowPages() {
    for (auto& c : chunks_) {
      if (c.base) ::munmap(c.base, 2u << 20);
    }
  }
  LowPages(const LowPages&) = delete;
  LowPages& operator=(const LowPages&) = delete;
  struct Page {
    uint8_t* va;
    uint64_t pa;
  };
  bool ok() const { return !pages_.empty(); }
  const Page& operator[](size_t i) const { return pages_[i]; }
  size_t searched_bytes() const { return searched_; }

 private:
  struct Chunk {
    void* base;
    bool used;
  };
  std::vector<Page> pages_;
  std::vector<Chunk> chunks_;
  size_t searched_ = 0;
};

// Fills a page with a recognisable pattern derived from SEED.
inline void FillPattern(uint8_t* p, size_t n, uint32_t seed) {
  uint32_t x = seed | 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;  // xorshift32
    p[i] = static_cast<uint8_t>(x);
  }
}

// Runs a program (argv[0] looked up in PATH); its exit status, -1 if it
// could not run.
inline int RunProgram(const std::vector<std::string>& argv) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace guest
