#pragma once

// The Linux x86 boot protocol's view of a bzImage (Documentation/arch/x86/
// boot.rst, "THE REAL-MODE KERNEL HEADER"): the setup header in the first
// sectors, then the protected-mode kernel starting at (setup_sects + 1) * 512.
// devpass uses the 64-bit boot protocol (version 2.12+, XLF_KERNEL_64):
// no real-mode code of the kernel runs.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"

namespace devpass::vmm {

// Offsets of setup header fields in the bzImage file (boot.rst).
namespace bzimage {
inline constexpr size_t kSetupSects = 0x1f1;
inline constexpr size_t kBootFlag = 0x1fe;     // 0xAA55
inline constexpr size_t kJump = 0x200;         // byte 0x201: header length - 2
inline constexpr size_t kHeaderMagic = 0x202;  // "HdrS"
inline constexpr size_t kVersion = 0x206;
inline constexpr size_t kLoadFlags = 0x211;
inline constexpr size_t kInitrdAddrMax = 0x22c;
inline constexpr size_t kKernelAlignment = 0x230;
inline constexpr size_t kRelocatable = 0x234;
inline constexpr size_t kXLoadFlags = 0x236;
inline constexpr size_t kCmdlineSize = 0x238;
inline constexpr size_t kPrefAddress = 0x258;
inline constexpr size_t kInitSize = 0x260;
inline constexpr uint16_t kBootFlagValue = 0xaa55;
inline constexpr uint32_t kHdrS = 0x53726448;    // "HdrS" little endian
inline constexpr uint16_t kMinVersion = 0x020c;  // 2.12: xloadflags exists
inline constexpr uint8_t kLoadedHigh = 0x01;     // loadflags: bzImage
inline constexpr uint16_t kXlfKernel64 = 0x01;   // xloadflags: 64-bit entry
}  // namespace bzimage

struct BzImage {
  uint16_t version = 0;     // 0x020f = 2.15
  uint8_t setup_sects = 0;  // as used (0 in the file means 4)
  uint8_t loadflags = 0;
  uint16_t xloadflags = 0;
  uint32_t initrd_addr_max = 0;
  uint32_t kernel_alignment = 0;
  bool relocatable = false;
  uint32_t cmdline_size = 0;
  uint64_t pref_address = 0;
  uint32_t init_size = 0;
  size_t header_end = 0;     // setup header spans [0x1f1, header_end)
  size_t kernel_offset = 0;  // protected-mode kernel in the file
  size_t kernel_size = 0;

  std::string VersionString() const;
};

// Checks and parses. `path` names the file in error messages, which say what
// the file looks like when it is not a bzImage.
Result<BzImage> ParseBzImage(std::span<const uint8_t> file,
                             std::string_view path);

}  // namespace devpass::vmm
