#pragma once

// Builds bzImage files in memory with the fields of the setup header that
// devpass reads (boot.rst offsets), for parser and loader tests.

#include <cstdint>
#include <cstring>
#include <vector>

namespace devpass::vmm::testing {

struct BzImageSpec {
  uint8_t setup_sects = 4;
  uint16_t version = 0x020f;
  uint8_t loadflags = 0x01;
  uint16_t xloadflags = 0x01;
  uint32_t initrd_addr_max = 0x7fffffff;
  uint32_t cmdline_size = 2047;
  uint64_t pref_address = 0x1000000;
  uint32_t init_size = 0x400000;
  size_t kernel_bytes = 8192;
  bool boot_flag = true;
  bool hdrs = true;
};

inline void Put(std::vector<uint8_t>& f, size_t off, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    f[off + i] = static_cast<uint8_t>(v >> (8 * i));
}

inline std::vector<uint8_t> MakeBzImage(const BzImageSpec& s = {}) {
  const size_t setup = (s.setup_sects == 0 ? 4 : s.setup_sects) + 1;
  std::vector<uint8_t> f(setup * 512 + s.kernel_bytes, 0);
  f[0x1f1] = s.setup_sects;
  if (s.boot_flag) Put(f, 0x1fe, 0xaa55, 2);
  f[0x200] = 0xeb;  // jmp
  f[0x201] = 0x6a;  // header ends at 0x26c
  if (s.hdrs) std::memcpy(&f[0x202], "HdrS", 4);
  Put(f, 0x206, s.version, 2);
  f[0x211] = s.loadflags;
  Put(f, 0x22c, s.initrd_addr_max, 4);
  Put(f, 0x230, 0x200000, 4);
  f[0x234] = 1;
  Put(f, 0x236, s.xloadflags, 2);
  Put(f, 0x238, s.cmdline_size, 4);
  Put(f, 0x258, s.pref_address, 8);
  Put(f, 0x260, s.init_size, 4);
  // The protected-mode kernel: a recognisable pattern.
  for (size_t i = 0; i < s.kernel_bytes; ++i)
    f[setup * 512 + i] = static_cast<uint8_t>(i * 7);
  return f;
}

}  // namespace devpass::vmm::testing
