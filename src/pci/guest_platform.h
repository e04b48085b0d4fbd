#pragma once

// What a passthrough PCI function needs from the VMM, as an interface so that
// src/pci stays below src/vmm (the VMM implements it over KVM; unit tests over
// a fake). Everything handed out is an owned Registration: dropping it takes
// the mapping, trap or interrupt route away again, so a BAR that moves or a
// device that goes away leaves nothing behind in KVM.
//
// Addresses are guest-physical (memory) or port numbers (I/O) as plain
// integers here; the VMM side converts to its strong types.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/error.h"
#include "pci/address_space.h"

namespace devpass::pci {

class Registration {
 public:
  virtual ~Registration() = default;
};
using RegistrationPtr = std::unique_ptr<Registration>;

// An MSI message as the guest programs it (PCI Local Bus 3.0 §6.8.1.3-6;
// MSI-X table entries §6.8.2.6): on x86, address 0xFEEx_xxxx names the
// destination APIC, data the vector and delivery mode (Intel SDM vol. 3
// §10.11).
struct MsiMessage {
  uint64_t address = 0;
  uint32_t data = 0;
  auto operator<=>(const MsiMessage&) const = default;
};

// One MSI route: when `eventfd` is signalled the kernel injects `message`
// (a GSI routed to the message plus a KVM irqfd): no userspace hop.
class MsiRoute : public Registration {
 public:
  // Re-targets the route (the guest rewrote the address/data).
  virtual Status Update(const MsiMessage& message) = 0;
};

class GuestPlatform {
 public:
  virtual ~GuestPlatform() = default;

  // Host memory (a VFIO BAR mmap) appears at guest-physical
  // [gpa, gpa + size): a KVM memslot, so guest accesses never exit. gpa,
  // size and host must be page aligned. Refused (kConflict) if the range
  // touches guest RAM or anything already mapped or trapped.
  virtual Result<RegistrationPtr> MapMemory(uint64_t gpa, uint64_t size,
                                            void* host, std::string name) = 0;
  // Accesses to [gpa, gpa + size) exit to `handler` with offsets relative to
  // gpa. Same refusals as MapMemory.
  virtual Result<RegistrationPtr> TrapMmio(uint64_t gpa, uint64_t size,
                                           std::shared_ptr<IoHandler> handler,
                                           std::string name) = 0;
  virtual Result<RegistrationPtr> TrapPio(uint16_t port, uint16_t size,
                                          std::shared_ptr<IoHandler> handler,
                                          std::string name) = 0;

  // MSI delivery for `eventfd` (caller keeps the fd open while the route
  // lives). Refused when the message does not target the local APIC window
  // 0xFEE0_0000-0xFEEF_FFFF: a guest must not make a device write anywhere
  // else in the name of an interrupt.
  virtual Result<std::unique_ptr<MsiRoute>> RouteMsi(
      int eventfd, const MsiMessage& message) = 0;
  // Level INTx: `trigger_fd` asserts IOAPIC input `gsi`; KVM signals
  // `resample_fd` when the guest EOIs it (VFIO then unmasks the line).
  virtual Result<RegistrationPtr> RouteIntx(int trigger_fd, int resample_fd,
                                            uint32_t gsi) = 0;
};

}  // namespace devpass::pci
