#pragma once

// pci::GuestPlatform over KVM: what a passthrough PCI function needs from
// the VMM, with the VMM's safety checks in front of every request.
//
//   MapMemory  a KVM memslot over host memory (a VFIO BAR mmap)
//   TrapMmio   a range of the VM's MMIO AddressSpace (KVM exits to
//              userspace for any guest-physical address without a memslot,
//              so a trapped range must not be under one)
//   TrapPio    a range of the VM's I/O port AddressSpace
//   RouteMsi   a GSI routed to the MSI message plus an irqfd on it
//   RouteIntx  an irqfd with resample on the function's IOAPIC input
//
// Refused, with the thing in the way named: a memory range that touches
// guest RAM, another memslot, a trapped MMIO range or what the in-kernel
// devices own (IOAPIC page, the local APIC/MSI window, KVM's private TSS
// and identity-map pages); an I/O range over ports the in-kernel PIC, PIT
// and ELCR answer (the VMM would never see those accesses) or any other
// range; an MSI address outside the local APIC window.
//
// Every request holds one mutex for its check and its insertion, so two
// vCPUs moving two BARs at once cannot both claim the same range.
// Registrations may outlive the platform (a device held elsewhere): a trap
// removal then does nothing; memslots and irqfds are handled by their own
// tables (MemslotTable, IrqRouter), which the Vm keeps until the VM fd goes.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pci/address_space.h"
#include "pci/guest_platform.h"
#include "vmm/guest_memory.h"
#include "vmm/irq_routing.h"
#include "vmm/memslots.h"

namespace devpass::vmm {

class VmPlatform : public pci::GuestPlatform {
 public:
  // Everything is owned by the Vm and outlives this object.
  VmPlatform(pci::AddressSpace& pio, pci::AddressSpace& mmio,
             MemslotTable& memslots, IrqRouter& router,
             std::vector<RamRegion> ram);
  ~VmPlatform() override;
  VmPlatform(const VmPlatform&) = delete;
  VmPlatform& operator=(const VmPlatform&) = delete;

  Result<pci::RegistrationPtr> MapMemory(uint64_t gpa, uint64_t size,
                                         void* host, std::string name) override;
  Result<pci::RegistrationPtr> TrapMmio(uint64_t gpa, uint64_t size,
                                        std::shared_ptr<pci::IoHandler> handler,
                                        std::string name) override;
  Result<pci::RegistrationPtr> TrapPio(uint16_t port, uint16_t size,
                                       std::shared_ptr<pci::IoHandler> handler,
                                       std::string name) override;
  Result<std::unique_ptr<pci::MsiRoute>> RouteMsi(
      int eventfd, const pci::MsiMessage& message) override;
  Result<pci::RegistrationPtr> RouteIntx(int trigger_fd, int resample_fd,
                                         uint32_t gsi) override;

  struct Core;  // shared with trap registrations

 private:
  // kConflict naming what [gpa, gpa + size) runs into: RAM, the in-kernel
  // devices' ranges, memslots and/or trapped MMIO (core mutex held).
  Status CheckMemoryRange(uint64_t gpa, uint64_t size, const std::string& name,
                          bool check_traps, bool check_memslots) const;

  std::shared_ptr<Core> core_;
  MemslotTable& memslots_;
  IrqRouter& router_;
  const std::vector<RamRegion> ram_;
};

}  // namespace devpass::vmm
