// blkperf: sequential and random read performance of a block device, for the
// devpass benchmark harness (bench/lab). It stands in for fio, which neither
// the lab host nor the busybox guests have: one static binary, libc only, the
// same in every way the device is reached (natively, passed through to a guest,
// ...). Reads use O_DIRECT, so they go to the device each time instead of being
// served from the page cache.
//
//   blkperf DEVICE --label WAY [--runs R] [--seq-mib M] [--rand-ops K]
//   [--block-kib B]
//
// Each of R runs (default 3) does, in this order:
//   seq   M MiB (default 16, capped at the device size) from offset 0, in
//   preads of B KiB
//         (default 1024): BENCH nvme.seq_read <way> <MB/s>   (MB = 10^6 bytes)
//   rand  K (default 2000) preads of 4 KiB at uniformly random 4 KiB-aligned
//   offsets, one at
//         a time (queue depth 1): BENCH nvme.rand_read <way> <IOPS>
// The random offsets come from std::mt19937_64 with a fixed seed plus the run
// index, so every way reads the same blocks. The size is BLKGETSIZE64's, or
// st_size for a regular file (to test on a file); a file whose filesystem
// refuses O_DIRECT (EINVAL, e.g. tmpfs) is read through the page cache, with a
// note: its numbers then measure memory, not a disk.
//
// stdout, flushed line by line: BENCH lines and progress lines starting with
// two spaces. Errors: one line on stderr, exit 1; usage errors exit 2.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>

#include "number_arg.h"

namespace {

using Clock = std::chrono::steady_clock;

// O_DIRECT wants buffers, offsets and lengths aligned to the logical block
// size; 4 KiB covers 512-byte and 4 KiB devices alike.
constexpr uint64_t kAlign = 4096;
constexpr uint64_t kRandLen = 4096;  // bytes per random read
constexpr uint64_t kSeed =
    0x6465767061737321ULL;  // "devpass!": fixed, so ways compare

[[noreturn]] void Fail(const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "blkperf: %s\n", what.c_str());
  std::exit(1);
}

std::string Why() { return std::strerror(errno); }

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

struct Options {
  std::string device, label;
  uint64_t runs = 3, seq_mib = 16, rand_ops = 2000, block_kib = 1024;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(
      stderr,
      "blkperf: %s\nusage: blkperf DEVICE --label WAY [--runs R] [--seq-mib M] "
      "[--rand-ops K] [--block-kib B]\n",
      why.c_str());
  std::exit(2);
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      if (!o.device.empty()) Usage("unexpected argument " + arg);
      o.device = arg;
      continue;
    }
    if (i + 1 >= argc) Usage(arg + " wants a value");
    const char* value = argv[++i];
    if (arg == "--label") {
      o.label = value;
    } else if (arg == "--runs") {
      o.runs = devpass::bench::NumberArg(arg, value, 1, 10000, Usage);
    } else if (arg == "--seq-mib") {
      o.seq_mib = devpass::bench::NumberArg(arg, value, 1, 1 << 20, Usage);
    } else if (arg == "--rand-ops") {
      o.rand_ops = devpass::bench::NumberArg(arg, value, 1, 100000000, Usage);
    } else if (arg == "--block-kib") {
      o.block_kib = devpass::bench::NumberArg(arg, value, kAlign / 1024,
                                              64 * 1024, Usage);
      if (o.block_kib % (kAlign / 1024) != 0)
        Usage("--block-kib must be a multiple of 4");
    } else {
      Usage("no option " + arg);
    }
  }
  if (o.device.empty()) Usage("no DEVICE");
  // The harness splits BENCH lines on whitespace.
  if (o.label.empty() || o.label.find_first_of(" \t\n") != std::string::npos) {
    Usage("--label WAY (one word) is required");
  }
  return o;
}

struct Device {
  std::string path;
  int fd = -1;
  uint64_t size = 0;
  bool direct = true;  // false: a regular file read through the page cache
};

// Reads LEN bytes at OFFSET, all of them or the run fails.
void ReadAt(const Device& dev, char* buf, uint64_t len, uint64_t offset,
            const std::string& what) {
  ssize_t n;
  do {
    n = pread(dev.fd, buf, len, static_cast<off_t>(offset));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    Fail(what + ": pread " + dev.path + " at offset " + std::to_string(offset) +
         ": " + Why());
  }
  if (static_cast<uint64_t>(n) != len) {
    Fail(what + ": short read of " + dev.path + " at offset " +
         std::to_string(offset) + ": " + std::to_string(n) + " of " +
         std::to_string(len) + " bytes");
  }
}

// Opens PATH with O_DIRECT and finds its size. BUF (kAlign-aligned, kAlign
// bytes at least) serves for a probe read.
Device Open(const std::string& path, char* buf) {
  Device dev{path};
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) Fail("stat " + path + ": " + Why());
  const bool regular = S_ISREG(st.st_mode);
  if (!regular && !S_ISBLK(st.st_mode))
    Fail(path + ": neither a block device nor a file");
  dev.fd = open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  // Some filesystems refuse O_DIRECT at open, others only at the first read:
  // probe both. Only a regular file may fall back; a block device that refuses
  // it is an error.
  if (dev.fd >= 0 && regular && pread(dev.fd, buf, kAlign, 0) < 0 &&
      errno == EINVAL) {
    close(dev.fd);
    dev.fd = -1;
    errno = EINVAL;
  }
  if (dev.fd < 0 && errno == EINVAL && regular) {
    dev.direct = false;
    dev.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (dev.fd < 0) Fail("open " + path + ": " + Why());
  if (fstat(dev.fd, &st) != 0) Fail("fstat " + path + ": " + Why());
  if (regular) {
    dev.size = static_cast<uint64_t>(st.st_size);
  } else if (ioctl(dev.fd, BLKGETSIZE64, &dev.size) != 0) {
    Fail("ioctl BLKGETSIZE64 " + path + ": " + Why());
  }
  if (dev.size < kRandLen) {
    Fail(path + ": " + std::to_string(dev.size) +
         " bytes, less than one 4 KiB read");
  }
  return dev;
}

// MB/s of reading BYTES from offset 0 in BLOCK-byte requests.
double SeqRead(const Device& dev, uint64_t bytes, uint64_t block, char* buf,
               uint64_t run) {
  const std::string what = "seq run " + std::to_string(run);
  const auto start = Clock::now();
  for (uint64_t offset = 0; offset < bytes; offset += block) {
    ReadAt(dev, buf, std::min(block, bytes - offset), offset, what);
  }
  const double secs = Seconds(Clock::now() - start);
  std::printf("  %s: %llu bytes in %.3f s\n", what.c_str(),
              static_cast<unsigned long long>(bytes), secs);
  return static_cast<double>(bytes) / secs / 1e6;
}

// IOPS of OPS 4 KiB reads at random aligned offsets, one after the other.
double RandRead(const Device& dev, uint64_t ops, char* buf, uint64_t run) {
  const std::string what = "rand run " + std::to_string(run);
  // The standard fixes mt19937_64's output sequence, but not
  // uniform_int_distribution's algorithm; a plain modulo keeps the offsets the
  // same whatever the C++ library. Its bias, at most blocks / 2^64, is nothing.
  std::mt19937_64 random(kSeed + run);
  const uint64_t blocks = dev.size / kRandLen;
  const auto start = Clock::now();
  for (uint64_t i = 0; i < ops; ++i) {
    ReadAt(dev, buf, kRandLen, random() % blocks * kRandLen, what);
  }
  const double secs = Seconds(Clock::now() - start);
  std::printf("  %s: %llu reads of 4 KiB in %.3f s, %.1f us each\n",
              what.c_str(), static_cast<unsigned long long>(ops), secs,
              secs * 1e6 / static_cast<double>(ops));
  return static_cast<double>(ops) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  // The harness reads our lines through a pipe as they come: flush each one.
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const Options o = ParseArgs(argc, argv);
  const uint64_t block = o.block_kib * 1024;
  void* memory = nullptr;
  if (int err = posix_memalign(&memory, kAlign, std::max(block, kRandLen));
      err != 0) {
    errno = err;
    Fail("posix_memalign " + std::to_string(block) + " bytes: " + Why());
  }
  char* buf = static_cast<char*>(memory);
  const Device dev = Open(o.device, buf);
  // Whole aligned blocks only: O_DIRECT refuses a tail that is not.
  const uint64_t seq_bytes =
      std::min(o.seq_mib << 20, dev.size) / kAlign * kAlign;
  std::printf(
      "  %s: %llu bytes, %s; seq %llu bytes in %llu KiB reads, rand %llu x 4 "
      "KiB\n",
      dev.path.c_str(), static_cast<unsigned long long>(dev.size),
      dev.direct ? "O_DIRECT" : "page cache",
      static_cast<unsigned long long>(seq_bytes),
      static_cast<unsigned long long>(o.block_kib),
      static_cast<unsigned long long>(o.rand_ops));
  if (!dev.direct) {
    std::printf(
        "  note: %s: the filesystem refuses O_DIRECT (EINVAL); reading through "
        "the page "
        "cache, so the numbers measure memory, not a disk\n",
        dev.path.c_str());
  }
  const char* way = o.label.c_str();
  for (uint64_t run = 1; run <= o.runs; ++run) {
    std::printf("BENCH nvme.seq_read %s %.3f\n", way,
                SeqRead(dev, seq_bytes, block, buf, run));
    std::printf("BENCH nvme.rand_read %s %.3f\n", way,
                RandRead(dev, o.rand_ops, buf, run));
  }
  close(dev.fd);
  free(memory);
  return 0;
}
