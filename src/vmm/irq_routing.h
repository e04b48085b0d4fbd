#pragma once

// The VM's GSI routing table and irqfds: how a device's interrupt reaches
// the guest without a userspace hop (Documentation/virt/kvm/api.rst,
// KVM_SET_GSI_ROUTING and KVM_IRQFD).
//
//   eventfd --KVM_IRQFD--> GSI --routing table--> IOAPIC pin / PIC pin
//                                             \-> MSI message to a LAPIC
//
// KVM_SET_GSI_ROUTING replaces the whole table, and once userspace has set
// one KVM no longer keeps its defaults: every table devpass sets starts with
// the default entries kvm_setup_default_irq_routing() installs with
// KVM_CREATE_IRQCHIP (arch/x86/kvm/irq_comm.c, default_routing[]):
//   GSI 0-15   IOAPIC pin n, and PIC master pin n (n < 8) or slave pin n-8,
//   GSI 16-23  IOAPIC pin n only,
// so COM1 (GSI 4 via KVM_IRQ_LINE), the PIT and PCI INTx keep working.
// MSI routes follow on GSIs from layout::kFirstMsiGsi up, lowest free first
// (a freed GSI is reused).
//
// Lifetime: IrqRouter is owned by the Vm and destroyed before the VM fd is
// closed; it deassigns every irqfd still bound. The handles (MsiGsi, Irqfd)
// may outlive it: they share its state and do nothing once it is gone.
// Thread-safe: one mutex orders table updates and irqfd changes, so two
// vCPUs re-targeting vectors at once each push a consistent table.

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "base/error.h"
#include "pci/guest_platform.h"
#include "vmm/kvm_api.h"
#include "vmm/layout.h"

namespace devpass::vmm {

// KVM's default routing table (see above), 40 entries.
std::vector<kvm_irq_routing_entry> DefaultGsiRoutes();

// A KVM_IRQ_ROUTING_MSI entry for `gsi`.
kvm_irq_routing_entry MsiRouteEntry(Gsi gsi, const pci::MsiMessage& message);

// Refuses (kPermissionDenied) an MSI address outside the local APIC window
// [layout::kMsiAddressBase, + kMsiAddressSize): a message is a DMA write, and
// a route KVM would inject for anything else is a guest asking the VMM to
// write elsewhere in its name.
Status CheckMsiAddress(uint64_t address);

class IrqRouter {
  struct State;

 public:
  // `gsi_count`: what KVM_CHECK_EXTENSION(KVM_CAP_IRQ_ROUTING) reports,
  // the number of GSIs the table may use (KVM_MAX_IRQ_ROUTES).
  IrqRouter(KvmApi& kvm, int vm_fd, uint32_t gsi_count);
  ~IrqRouter();
  IrqRouter(const IrqRouter&) = delete;
  IrqRouter& operator=(const IrqRouter&) = delete;

  // A GSI routed to an MSI message; freed (and the table set without it)
  // on destruction.
  class MsiGsi {
   public:
    MsiGsi() = default;
    ~MsiGsi() { Reset(); }
    MsiGsi(MsiGsi&& o) noexcept { *this = std::move(o); }
    MsiGsi& operator=(MsiGsi&& o) noexcept;
    Gsi gsi() const { return gsi_; }
    bool valid() const { return state_ != nullptr; }
    // Re-targets the route; a message equal to the current one costs no
    // ioctl. On failure the previous message stays routed.
    Status Update(const pci::MsiMessage& message);
    void Reset();

   private:
    friend class IrqRouter;
    std::shared_ptr<State> state_;
    Gsi gsi_;
  };

  // An eventfd bound to a GSI (KVM_IRQFD); deassigned on destruction.
  class Irqfd {
   public:
    Irqfd() = default;
    ~Irqfd() { Reset(); }
    Irqfd(Irqfd&& o) noexcept { *this = std::move(o); }
    Irqfd& operator=(Irqfd&& o) noexcept;
    Gsi gsi() const { return gsi_; }
    bool valid() const { return state_ != nullptr; }
    void Reset();

   private:
    friend class IrqRouter;
    std::shared_ptr<State> state_;
    uint64_t id_ = 0;
    Gsi gsi_;
  };

  // Allocates the lowest free GSI at or above layout::kFirstMsiGsi, routes
  // it to `message` and sets the table. kBusy when every GSI is taken.
  Result<MsiGsi> AllocateMsi(const pci::MsiMessage& message);

  // Binds `eventfd` to `gsi`. With `resample_fd` >= 0 the binding is a
  // level-triggered one (KVM_IRQFD_FLAG_RESAMPLE): KVM de-asserts the line
  // when the guest EOIs it and signals `resample_fd`; only an irqchip GSI
  // (0-23, an IOAPIC input) can be resampled. The caller keeps both fds
  // open while the Irqfd lives.
  Result<Irqfd> AssignIrqfd(int eventfd, Gsi gsi, int resample_fd = -1);

  // The table last given to KVM; empty while none was (KVM's defaults are
  // in force then).
  std::vector<kvm_irq_routing_entry> table() const;
  size_t msi_route_count() const;
  size_t irqfd_count() const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace devpass::vmm
