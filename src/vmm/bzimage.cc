#include "vmm/bzimage.h"

#include <fmt/format.h>

#include <cstring>

namespace devpass::vmm {
namespace {

template <typename T>
T Get(std::span<const uint8_t> f, size_t off) {
  T v{};
  std::memcpy(&v, f.data() + off, sizeof(T));  // x86: little endian
  return v;
}

// What a file that is not a bzImage probably is, for the error message.
std::string Describe(std::span<const uint8_t> f) {
  auto starts = [&](std::string_view magic) {
    return f.size() >= magic.size() &&
           std::memcmp(f.data(), magic.data(), magic.size()) == 0;
  };
  if (starts("\x7f"
             "ELF")) {
    return "an ELF file (an uncompressed vmlinux?); give the compressed "
           "bzImage, e.g. /boot/vmlinuz-<version>";
  }
  if (starts("\x1f\x8b")) return "gzip-compressed data (an initramfs?)";
  if (starts("\x28\xb5\x2f\xfd")) return "zstd-compressed data (an initramfs?)";
  if (starts("\xfd"
             "7zXZ"))
    return "xz-compressed data";
  if (starts("070701") || starts("070702"))
    return "a cpio archive (an initramfs?)";
  if (starts("MZ")) return "a PE/EFI executable without a Linux setup header";
  return fmt::format("{} bytes starting with {:02x} {:02x} {:02x} {:02x}",
                     f.size(), f.size() > 0 ? f[0] : 0, f.size() > 1 ? f[1] : 0,
                     f.size() > 2 ? f[2] : 0, f.size() > 3 ? f[3] : 0);
}

}  // namespace

std::string BzImage::VersionString() const {
  return fmt::format("{}.{:02}", version >> 8, version & 0xff);
}

Result<BzImage> ParseBzImage(std::span<const uint8_t> f,
                             std::string_view path) {
  auto not_bzimage = [&](std::string why) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} is not a Linux bzImage: {}", path, why));
  };
  if (f.size() < 0x400) {
    return not_bzimage(fmt::format("it is {} bytes, too small; found {}",
                                   f.size(), Describe(f)));
  }
  if (Get<uint16_t>(f, bzimage::kBootFlag) != bzimage::kBootFlagValue) {
    return not_bzimage(
        fmt::format("no 0xAA55 boot flag at 0x1fe; found {}", Describe(f)));
  }
  if (Get<uint32_t>(f, bzimage::kHeaderMagic) != bzimage::kHdrS) {
    return not_bzimage(
        "it has a boot sector but no \"HdrS\" setup header at "
        "0x202 (a pre-2.00 zImage or another boot loader)");
  }
  BzImage img;
  img.version = Get<uint16_t>(f, bzimage::kVersion);
  if (img.version < bzimage::kMinVersion) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format(
            "{} uses boot protocol {}; devpass needs 2.12 or later (Linux "
            "3.8+) for the 64-bit entry point",
            path, img.VersionString()));
  }
  img.setup_sects = f[bzimage::kSetupSects];
  if (img.setup_sects == 0) img.setup_sects = 4;  // boot.rst: 0 means 4
  img.loadflags = f[bzimage::kLoadFlags];
  img.xloadflags = Get<uint16_t>(f, bzimage::kXLoadFlags);
  img.initrd_addr_max = Get<uint32_t>(f, bzimage::kInitrdAddrMax);
  img.kernel_alignment = Get<uint32_t>(f, bzimage::kKernelAlignment);
  img.relocatable = f[bzimage::kRelocatable] != 0;
  img.cmdline_size = Get<uint32_t>(f, bzimage::kCmdlineSize);
  img.pref_address = Get<uint64_t>(f, bzimage::kPrefAddress);
  img.init_size = Get<uint32_t>(f, bzimage::kInitSize);
  img.header_end = 0x202 + f[bzimage::kJump + 1];
  if (!(img.loadflags & bzimage::kLoadedHigh)) {
    return not_bzimage(
        "LOADED_HIGH is clear in loadflags: a zImage, which "
        "loads at 0x10000; rebuild with `make bzImage`");
  }
  if (!(img.xloadflags & bzimage::kXlfKernel64)) {
    return MakeError(ErrorCode::kUnsupported,
                     fmt::format("{} has no 64-bit entry point (XLF_KERNEL_64 "
                                 "clear in xloadflags): devpass boots x86-64 "
                                 "kernels only",
                                 path));
  }
  img.kernel_offset = (static_cast<size_t>(img.setup_sects) + 1) * 512;
  if (img.kernel_offset >= f.size() || img.header_end > img.kernel_offset ||
      img.header_end < bzimage::kInitSize + 4) {
    return not_bzimage(
        fmt::format("its setup header says {} setup sectors and a "
                    "header ending at {:#x}, but the file has {} "
                    "bytes (truncated?)",
                    img.setup_sects, img.header_end, f.size()));
  }
  img.kernel_size = f.size() - img.kernel_offset;
  if (img.cmdline_size == 0) img.cmdline_size = 255;  // pre-2.06 default
  if (img.init_size < img.kernel_size)
    img.init_size = static_cast<uint32_t>(img.kernel_size);
  return img;
}

}  // namespace devpass::vmm
