#pragma once

// The guest side of the abstract device (module 2): a PCI function on the
// guest's bus backed by a VFIO device on the host. The guest's own driver
// drives the real hardware; devpass only stands where it must:
//
//   config space  virtualized (PCI Local Bus 3.0 §6): identity and class
//                 read from the device; BARs emulated (sizing answered,
//                 addresses chosen by the guest within the VMM's windows);
//                 the command register shadowed and written through, its
//                 decode bits mapping and unmapping the BARs; no expansion
//                 ROM; capabilities PM, PCIe and vendor-specific passed
//                 through, MSI and MSI-X emulated, every other one unlinked
//                 from the list (extended capabilities such as SR-IOV and
//                 resizable BAR live above 0xFF, which the guest's
//                 configuration mechanism #1 cannot reach at all).
//   BARs          memory BARs mapped straight into guest-physical memory
//                 (KVM memslots over the VFIO mmap), except the pages of the
//                 MSI-X table and PBA and whatever VFIO will not let us
//                 mmap: those trap and are forwarded (pread/pwrite) or
//                 emulated (the MSI-X table). I/O BARs trap.
//   interrupts    INTx through a KVM irqfd with resample (the EOI unmasks
//                 VFIO's line), MSI and MSI-X through one eventfd per
//                 vector, each an irqfd on a GSI routed to the message the
//                 guest programmed: no userspace hop per interrupt.
//
// Safety (the guest must never reach host memory): a BAR goes only where
// the windows allow and the VMM finds nothing else (RAM, another device);
// the MSI-X table is emulated and never mapped, and a message outside the
// local APIC window is not routed; DMA reaches only what the assignment
// layer mapped in the IOMMU (the guest's RAM).
//
// Thread safety: config and trapped BAR accesses may come from any vCPU
// thread; one mutex orders them.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fs.h"
#include "pci/bar_layout.h"
#include "pci/guest_platform.h"
#include "pci/msix_table.h"
#include "pci/pci_device.h"
#include "vfio/device.h"
#include "vfio/handles.h"
#include "vfio/pci_config.h"

namespace devpass::pci {

struct PassthroughOptions {
  BarWindows windows;
  // IOAPIC input of the function's INTx (from its guest slot and pin).
  uint32_t intx_gsi = 0;
  // Warnings worth a line on the console (a BAR refused, an MSI address
  // not routed). Default: dropped.
  std::function<void(const std::string&)> log;
};

// Counters for tests, `status` and benchmarks.
struct PassthroughStats {
  uint64_t config_reads = 0;
  uint64_t config_writes = 0;
  uint64_t bar_traps = 0;     // trapped BAR accesses (table, gaps, I/O)
  uint64_t bar_remaps = 0;    // BAR mapped at a (new) guest address
  uint64_t refused_bars = 0;  // placements refused
  uint64_t refused_msi = 0;   // MSI/MSI-X messages not routed
};

class VfioPciDevice : public PciDevice {
 public:
  // Reads the device's config space and regions, mmaps what may be mapped
  // and prepares one eventfd per interrupt vector. Nothing reaches the
  // guest until PlaceBars() and the guest's own command register writes.
  static Result<std::shared_ptr<VfioPciDevice>> Create(
      vfio::Device device, GuestPlatform& platform, PassthroughOptions options);
  ~VfioPciDevice() override;

  // Gives every BAR its initial guest address (firmware's job), leaving
  // decoding off: Linux enables it when it enables the device.
  Status PlaceBars(BarAllocator& allocator);

  // Tears down everything the guest side holds (routes, maps, traps) and
  // disables the VFIO interrupts. Idempotent; also run by the destructor.
  void Shutdown();

  // PciDevice.
  void ConfigRead(uint16_t offset, std::span<uint8_t> data) override;
  void ConfigWrite(uint16_t offset, std::span<const uint8_t> data) override;
  std::vector<Bar> Bars() const override;
  std::string Name() const override;

  vfio::Device& device() { return device_; }
  PassthroughStats stats() const;
  // The guest address of a BAR as the guest last programmed it.
  uint64_t BarAddress(int index) const;
  // Whether BAR `index` is currently mapped or trapped in the guest.
  bool BarLive(int index) const;

  // Called by the trap handlers (offsets relative to the BAR).
  void BarRead(size_t bar, uint64_t offset, std::span<uint8_t> data);
  void BarWrite(size_t bar, uint64_t offset, std::span<const uint8_t> data);

 private:
  enum class ByteKind : uint8_t { kShadow, kPassthrough, kZero };
  enum class IrqMode { kNone, kIntx, kMsi, kMsix };

  struct MappedArea {  // a part of a BAR backed by a VFIO mmap
    uint64_t offset = 0;
    vfio::Mapping mapping;
  };
  struct BarState {
    VirtualBar vbar;
    std::vector<MappedArea> mapped;
    std::vector<std::pair<uint64_t, uint64_t>> trapped;  // [offset, size)
    std::vector<RegistrationPtr> live;  // while decoded at `live_address`
    uint64_t live_address = 0;
  };
  VfioPciDevice(vfio::Device device, GuestPlatform& platform,
                PassthroughOptions options);
  Status Init();
  Status InitCapabilities(const std::vector<uint8_t>& phys);
  Status InitBarMaps();
  void Log(const std::string& message);

  // Config helpers (mu_ held).
  uint32_t ShadowRead32(uint16_t offset) const;
  BarState* BarAt(uint16_t config_offset);
  uint64_t ProgrammedAddress(const BarState& b) const;
  void UpdateDecoding();  // after command or BAR writes
  void MapBar(BarState& b, uint64_t address);
  void UnmapBar(BarState& b);

  // Interrupts (vfio_pci_irqs.cc; mu_ held).
  Status InitInterrupts();
  void UpdateInterrupts();
  void EnterMode(IrqMode mode);
  void LeaveMode();
  void SyncMsiRoutes();
  void SyncMsixVector(uint32_t vector);
  void DropRoutes();
  std::optional<MsiMessage> MsiMessageFor(uint32_t vector) const;
  bool MsiVectorMasked(uint32_t vector) const;
  bool MsixEnabled() const;
  bool MsixFunctionMasked() const;
  bool MsiEnabled() const;
  uint32_t MsiEnabledVectors() const;
  void SetRoute(uint32_t vector, std::optional<MsiMessage> message);

  vfio::Device device_;
  GuestPlatform& platform_;
  PassthroughOptions options_;
  std::string name_;

  mutable std::mutex mu_;
  ConfigSpace config_;  // shadow bytes + write masks
  std::array<ByteKind, kConfigSize> kind_{};
  std::vector<BarState> bars_;
  std::optional<vfio::MsiCapability> msi_;    // emulated
  std::optional<vfio::MsixCapability> msix_;  // emulated
  std::optional<MsixTable> msix_table_;
  uint8_t interrupt_pin_ = 0;

  IrqMode mode_ = IrqMode::kNone;
  std::vector<UniqueFd> vector_fds_;  // one eventfd per MSI/MSI-X vector
  std::vector<std::unique_ptr<MsiRoute>> routes_;  // by vector
  std::vector<std::optional<MsiMessage>>
      refused_;  // last refused message, by vector
  UniqueFd intx_trigger_, intx_resample_;
  RegistrationPtr intx_route_;
  bool shut_down_ = false;
  PassthroughStats stats_;
};

}  // namespace devpass::pci
