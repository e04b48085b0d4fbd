#include "vmm/linux_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace devpass::vmm {

std::vector<E820Entry> BuildE820(const std::vector<RamRegion>& ram) {
  std::vector<E820Entry> out;
  const RamRegion& low = ram.front();
  // Base memory up to the MP table; the MP table is reserved so the kernel
  // does not hand its page out before parsing it (Intel MP 1.4 §4).
  out.push_back({0, layout::kMpTable.value, kE820Ram});
  out.push_back({layout::kMpTable.value,
                 layout::kBaseMemoryEnd.value - layout::kMpTable.value,
                 kE820Reserved});
  // 0xA0000-0xDFFFF: legacy VGA and option ROM area on a PC; not RAM here.
  // 0xE0000-0xFFFFF: the ACPI tables, where a PC BIOS keeps its own.
  out.push_back({layout::kAcpiTables.value,
                 layout::kHighMemory.value - layout::kAcpiTables.value,
                 kE820Reserved});
  out.push_back({layout::kHighMemory.value,
                 low.end().value - layout::kHighMemory.value, kE820Ram});
  // Between low.end() and kIoApic: the 32-bit PCI hole, deliberately absent
  // so that Linux may assign BARs there.
  out.push_back({layout::kIoApic.value, kPageSize, kE820Reserved});
  out.push_back({layout::kLocalApic.value, kPageSize, kE820Reserved});
  out.push_back(
      {layout::kKvmIdentityMap.value, layout::kKvmPrivateBytes, kE820Reserved});
  for (size_t i = 1; i < ram.size(); ++i) {
    out.push_back({ram[i].start.value, ram[i].size, kE820Ram});
  }
  return out;
}

Result<InitrdPlacement> PlaceInitrd(const BzImage& img, Gpa low_ram_end,
                                    uint64_t size) {
  if (size == 0) return InitrdPlacement{};
  // initrd_addr_max is the highest address the initrd's last byte may have.
  uint64_t top = std::min<uint64_t>(
      static_cast<uint64_t>(img.initrd_addr_max) + 1, low_ram_end.value);
  const uint64_t floor = std::max(layout::kKernelLoad.value + img.init_size,
                                  img.pref_address + img.init_size);
  if (size > top || ((top - size) & ~(kPageSize - 1)) < floor) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("the initrd ({} MiB) does not fit between the "
                    "kernel (which needs up to {} MiB while it "
                    "decompresses) and the top of guest RAM below "
                    "4 GiB ({} MiB); give a larger --mem",
                    (size + kMiB - 1) / kMiB, floor / kMiB, top / kMiB));
  }
  return InitrdPlacement{Gpa((top - size) & ~(kPageSize - 1)), size};
}

boot_params BuildBootParams(const BzImage& img, std::span<const uint8_t> file,
                            const InitrdPlacement& initrd,
                            const std::vector<E820Entry>& e820) {
  boot_params bp;
  std::memset(&bp, 0, sizeof(bp));
  // boot.rst: "copy the setup header into boot_params" (0x1f1 up to the end
  // the jump instruction at 0x200 implies), then fill the loader's fields.
  const size_t hdr_len =
      std::min(img.header_end - bzimage::kSetupSects, sizeof(bp.hdr));
  std::memcpy(reinterpret_cast<uint8_t*>(&bp) + bzimage::kSetupSects,
              file.data() + bzimage::kSetupSects, hdr_len);
  bp.hdr.type_of_loader = 0xff;  // "undefined" boot loader
  bp.hdr.vid_mode = 0xffff;      // "normal" video mode
  bp.hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdline.value);
  bp.hdr.ramdisk_image = static_cast<uint32_t>(initrd.addr.value);
  bp.hdr.ramdisk_size = static_cast<uint32_t>(initrd.size);
  const size_t n = std::min<size_t>(e820.size(), E820_MAX_ENTRIES_ZEROPAGE);
  for (size_t i = 0; i < n; ++i) {
    bp.e820_table[i].addr = e820[i].addr;
    bp.e820_table[i].size = e820[i].size;
    bp.e820_table[i].type = e820[i].type;
  }
  bp.e820_entries = static_cast<uint8_t>(n);
  return bp;
}

Result<LinuxEntry> LoadLinux(const GuestMemory& mem,
                             std::span<const uint8_t> file,
                             std::string_view kernel_path,
                             std::span<const uint8_t> initrd,
                             std::string_view cmdline) {
  DP_ASSIGN_OR_RETURN(BzImage img, ParseBzImage(file, kernel_path));
  if (cmdline.size() >= img.cmdline_size ||
      cmdline.size() >= layout::kCmdlineMax) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("the kernel command line is {} bytes; this "
                                 "kernel accepts at most {}",
                                 cmdline.size(), img.cmdline_size));
  }
  if (layout::kKernelLoad.value + img.init_size > mem.low_end().value) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("the kernel needs {} MiB from 1 MiB to "
                                 "decompress; give a larger --mem",
                                 img.init_size / kMiB + 1));
  }
  DP_RETURN_IF_ERROR(mem.Write(
      layout::kKernelLoad, file.subspan(img.kernel_offset, img.kernel_size)));
  std::vector<uint8_t> cl(cmdline.begin(), cmdline.end());
  cl.push_back(0);
  DP_RETURN_IF_ERROR(mem.Write(layout::kCmdline, cl));
  DP_ASSIGN_OR_RETURN(InitrdPlacement placed,
                      PlaceInitrd(img, mem.low_end(), initrd.size()));
  if (!initrd.empty()) DP_RETURN_IF_ERROR(mem.Write(placed.addr, initrd));
  boot_params bp = BuildBootParams(img, file, placed, BuildE820(mem.regions()));
  DP_RETURN_IF_ERROR(
      mem.Write(layout::kBootParams,
                std::span(reinterpret_cast<const uint8_t*>(&bp), sizeof(bp))));
  return LinuxEntry{layout::kKernelLoad + layout::kKernel64EntryOffset,
                    layout::kBootParams};
}

}  // namespace devpass::vmm
