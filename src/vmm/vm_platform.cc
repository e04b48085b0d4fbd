#include "vmm/vm_platform.h"

#include <fmt/format.h>

namespace devpass::vmm {

struct VmPlatform::Core {
  std::mutex mu;
  bool alive = true;
  pci::AddressSpace* pio;
  pci::AddressSpace* mmio;
};

namespace {

// Guest-physical ranges KVM's in-kernel devices own: a memslot there is
// refused by KVM (its private slots) or shadowed, a trap never called.
struct Fixed {
  uint64_t base;
  uint64_t size;
  const char* name;
};
constexpr Fixed kFixedMmio[] = {
    {layout::kIoApic.value, kPageSize, "the IOAPIC (in-kernel)"},
    {layout::kMsiAddressBase, layout::kMsiAddressSize,
     "the local APIC and MSI window (in-kernel)"},
    {layout::kKvmIdentityMap.value, layout::kKvmPrivateBytes,
     "KVM's identity-map and TSS pages"},
};
// Ports the in-kernel PIC (8259A), ELCR and PIT (8254, port 0x61 with
// KVM_PIT_SPEAKER_DUMMY) answer before userspace sees the access.
constexpr Fixed kFixedPorts[] = {
    {0x20, 2, "the master PIC (in-kernel)"},
    {0x40, 4, "the PIT (in-kernel)"},
    {0x61, 1, "the PC speaker port of the in-kernel PIT"},
    {0xa0, 2, "the slave PIC (in-kernel)"},
    {0x4d0, 2, "the ELCR (in-kernel)"},
};

bool Overlaps(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
  return a < b + b_size && b < a + a_size;
}

tl::unexpected<Error> OverlapError(const char* kind, const std::string& name,
                                   uint64_t base, uint64_t size,
                                   const std::string& other,
                                   uint64_t other_base, uint64_t other_size) {
  return MakeError(
      ErrorCode::kConflict,
      fmt::format("{} {:#x}-{:#x} for {} overlaps {} at {:#x}-{:#x}; "
                  "the guest must place it elsewhere",
                  kind, base, base + size - 1, name, other, other_base,
                  other_base + other_size - 1));
}

class TrapRegistration : public pci::Registration {
 public:
  TrapRegistration(std::shared_ptr<VmPlatform::Core> core, bool io,
                   uint64_t base)
      : core_(std::move(core)), io_(io), base_(base) {}
  ~TrapRegistration() override {
    std::shared_ptr<pci::IoHandler> dropped;  // released after the lock
    std::lock_guard lock(core_->mu);
    if (!core_->alive) return;
    auto r = (io_ ? core_->pio : core_->mmio)->Remove(base_);
    if (r) dropped = std::move(*r);
  }

 private:
  std::shared_ptr<VmPlatform::Core> core_;
  bool io_;
  uint64_t base_;
};

class SlotRegistration : public pci::Registration {
 public:
  explicit SlotRegistration(MemslotTable::Slot slot) : slot_(std::move(slot)) {}

 private:
  MemslotTable::Slot slot_;
};

class MsiRouteImpl : public pci::MsiRoute {
 public:
  MsiRouteImpl(IrqRouter::MsiGsi gsi, IrqRouter::Irqfd irqfd)
      : gsi_(std::move(gsi)), irqfd_(std::move(irqfd)) {}
  Status Update(const pci::MsiMessage& message) override {
    return gsi_.Update(message);
  }

 private:
  // Declared in this order so that the irqfd goes before its route.
  IrqRouter::MsiGsi gsi_;
  IrqRouter::Irqfd irqfd_;
};

class IrqfdRegistration : public pci::Registration {
 public:
  explicit IrqfdRegistration(IrqRouter::Irqfd irqfd)
      : irqfd_(std::move(irqfd)) {}

 private:
  IrqRouter::Irqfd irqfd_;
};

}  // namespace

VmPlatform::VmPlatform(pci::AddressSpace& pio, pci::AddressSpace& mmio,
                       MemslotTable& memslots, IrqRouter& router,
                       std::vector<RamRegion> ram)
    : core_(std::make_shared<Core>()),
      memslots_(memslots),
      router_(router),
      ram_(std::move(ram)) {
  core_->pio = &pio;
  core_->mmio = &mmio;
}

VmPlatform::~VmPlatform() {
  std::lock_guard lock(core_->mu);
  core_->alive = false;
}

Status VmPlatform::CheckMemoryRange(uint64_t gpa, uint64_t size,
                                    const std::string& name, bool check_traps,
                                    bool check_memslots) const {
  const char* kind = "guest-physical range";
  if (size == 0 || gpa + size < gpa) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} for {} at {:#x} has size {:#x}: it must be "
                    "non-empty and not wrap around",
                    kind, name, gpa, size));
  }
  for (const RamRegion& r : ram_) {
    if (Overlaps(gpa, size, r.start.value, r.size)) {
      return OverlapError(kind, name, gpa, size, "guest RAM", r.start.value,
                          r.size);
    }
  }
  for (const Fixed& f : kFixedMmio) {
    if (Overlaps(gpa, size, f.base, f.size)) {
      return OverlapError(kind, name, gpa, size, f.name, f.base, f.size);
    }
  }
  if (check_memslots) {
    if (auto slot = memslots_.FindOverlap(Gpa(gpa), size)) {
      return OverlapError(kind, name, gpa, size,
                          fmt::format("{} (mapped, KVM memory slot {})",
                                      slot->name, slot->slot),
                          slot->gpa.value, slot->size);
    }
  }
  if (check_traps) {
    if (auto trap = core_->mmio->FindOverlap(gpa, size)) {
      return OverlapError(kind, name, gpa, size,
                          fmt::format("{} (trapped MMIO)", trap->name),
                          trap->base, trap->size);
    }
  }
  return Ok();
}

Result<pci::RegistrationPtr> VmPlatform::MapMemory(uint64_t gpa, uint64_t size,
                                                   void* host,
                                                   std::string name) {
  const uint64_t hva = reinterpret_cast<uint64_t>(host);
  if (gpa % kPageSize || size % kPageSize || hva % kPageSize) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("cannot map {} at guest-physical {:#x} ({:#x} "
                    "bytes, host {:#x}): address, size and host "
                    "address must be {}-byte page aligned; trap the "
                    "range instead",
                    name, gpa, size, hva, kPageSize));
  }
  std::lock_guard lock(core_->mu);
  DP_RETURN_IF_ERROR(CheckMemoryRange(gpa, size, name, /*check_traps=*/true,
                                      /*check_memslots=*/true));
  DP_ASSIGN_OR_RETURN(MemslotTable::Slot slot,
                      memslots_.Map(Gpa(gpa), size, host, std::move(name)));
  return std::make_unique<SlotRegistration>(std::move(slot));
}

Result<pci::RegistrationPtr> VmPlatform::TrapMmio(
    uint64_t gpa, uint64_t size, std::shared_ptr<pci::IoHandler> handler,
    std::string name) {
  std::lock_guard lock(core_->mu);
  // Trap-to-trap overlap is refused by AddressSpace::Add itself.
  DP_RETURN_IF_ERROR(CheckMemoryRange(gpa, size, name, /*check_traps=*/false,
                                      /*check_memslots=*/true));
  DP_RETURN_IF_ERROR(
      core_->mmio->Add(gpa, size, std::move(handler), std::move(name)));
  return std::make_unique<TrapRegistration>(core_, /*io=*/false, gpa);
}

Result<pci::RegistrationPtr> VmPlatform::TrapPio(
    uint16_t port, uint16_t size, std::shared_ptr<pci::IoHandler> handler,
    std::string name) {
  if (size == 0 || uint32_t{port} + size > 0x10000) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("I/O port range {:#x}+{:#x} for {} is empty or "
                    "runs past port 0xffff",
                    port, size, name));
  }
  for (const Fixed& f : kFixedPorts) {
    if (Overlaps(port, size, f.base, f.size)) {
      return OverlapError("I/O port range", name, port, size, f.name, f.base,
                          f.size);
    }
  }
  std::lock_guard lock(core_->mu);
  DP_RETURN_IF_ERROR(
      core_->pio->Add(port, size, std::move(handler), std::move(name)));
  return std::make_unique<TrapRegistration>(core_, /*io=*/true, port);
}

Result<std::unique_ptr<pci::MsiRoute>> VmPlatform::RouteMsi(
    int eventfd, const pci::MsiMessage& message) {
  DP_RETURN_IF_ERROR(CheckMsiAddress(message.address));
  DP_ASSIGN_OR_RETURN(IrqRouter::MsiGsi gsi, router_.AllocateMsi(message));
  DP_ASSIGN_OR_RETURN(IrqRouter::Irqfd irqfd,
                      router_.AssignIrqfd(eventfd, gsi.gsi()));
  return std::make_unique<MsiRouteImpl>(std::move(gsi), std::move(irqfd));
}

Result<pci::RegistrationPtr> VmPlatform::RouteIntx(int trigger_fd,
                                                   int resample_fd,
                                                   uint32_t gsi) {
  if (gsi < layout::kPciIntxFirstGsi ||
      gsi >= layout::kPciIntxFirstGsi + layout::kPciIntxGsiCount) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("GSI {} is not a PCI INTx line: PCI INTx reaches "
                    "IOAPIC inputs {}-{} (layout::PciIntxGsi)",
                    gsi, layout::kPciIntxFirstGsi,
                    layout::kPciIntxFirstGsi + layout::kPciIntxGsiCount - 1));
  }
  if (resample_fd < 0) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "INTx is level-triggered: it needs a resample eventfd so that "
        "the guest's EOI unmasks the line");
  }
  DP_ASSIGN_OR_RETURN(IrqRouter::Irqfd irqfd,
                      router_.AssignIrqfd(trigger_fd, Gsi(gsi), resample_fd));
  return std::make_unique<IrqfdRegistration>(std::move(irqfd));
}

}  // namespace devpass::vmm
