#pragma once

// The BARs of a passthrough function as the guest sees them, and where
// devpass places them before the guest boots (the job firmware does on a
// real machine). Kinds and flags come from the device's BAR registers
// (PCI Local Bus 3.0 §6.2.5.1: bit 0 I/O, bits 2:1 type, bit 3
// prefetchable), sizes from VFIO's region info.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "pci/pci_device.h"
#include "vfio/vfio_api.h"

namespace devpass::pci {

// Where BARs may live in the guest (the VMM's PCI windows). A BAR the guest
// moves outside them is not mapped.
struct BarWindows {
  uint64_t mmio32_start = 0;
  uint64_t mmio32_end = 0;  // exclusive
  uint64_t mmio64_start = 0;
  uint64_t mmio64_end = 0;
  uint64_t io_start = 0;
  uint64_t io_end = 0;
};

struct VirtualBar {
  Bar bar;              // index, kind, size, prefetchable
  uint32_t region = 0;  // VFIO region index (= BAR index for vfio-pci)
  // Low bits of the BAR register the guest reads back (§6.2.5.1).
  uint32_t FlagBits() const;
  // Writable bits of the BAR register (and of the upper register of a
  // 64-bit BAR): the address bits above the size, so that writing all ones
  // reads back the size (§6.2.5.1 "sizing").
  uint32_t LowMask() const;
  uint32_t HighMask() const;
};

// BARs from the device's config header (`config`, at least 64 bytes) and
// its VFIO regions. Unimplemented BARs (region size 0) are left out; the
// upper half of a 64-bit BAR is not a BAR of its own.
std::vector<VirtualBar> DescribeBars(std::span<const uint8_t> config,
                                     std::span<const vfio::RegionInfo> regions);

// True if [address, address + size) lies inside a window that suits `bar`.
bool FitsWindow(const BarWindows& windows, const VirtualBar& bar,
                uint64_t address);

// Bump allocation with natural alignment (a BAR is aligned to its size,
// §6.2.5.1), and memory BARs at least page aligned so that KVM can map
// them. 64-bit memory BARs go above 4 GiB, the rest below.
class BarAllocator {
 public:
  explicit BarAllocator(const BarWindows& windows)
      : windows_(windows),
        next32_(windows.mmio32_start),
        next64_(windows.mmio64_start),
        next_io_(windows.io_start) {}
  // Guest address for `bar`, or kConflict naming the window.
  Result<uint64_t> Allocate(const VirtualBar& bar, const std::string& device);

 private:
  BarWindows windows_;
  uint64_t next32_, next64_, next_io_;
};

}  // namespace devpass::pci
