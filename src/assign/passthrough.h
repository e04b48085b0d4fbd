#pragma once

// Device assignment proper (module 4): the devices of one run, taken from
// the host through one VFIO container and given to each VM the run boots.
//
// Attach(vm), between Vm::Create and Vm::Start, in the order kvmtool's
// vfio/core.c and the kernel need:
//   1. open each device (its group joins the container; the first group
//      sets the IOMMU type) and reset it, so the guest starts from a clean
//      device whatever the host or a previous guest left;
//   2. map all guest RAM in the IOMMU with IOVA = guest-physical address, so
//      the guest's driver can hand the device guest-physical addresses, and
//      the device reaches nothing but that RAM;
//   3. tell KVM about each group (KVM-VFIO device: coherent DMA, and the
//      group stays tied to this VM);
//   4. make each device a function on the guest bus (slot 1, 2, ...) with
//      its INTx on the slot's GSI and its BARs placed in the PCI windows.
// Detach(), after the VM stopped and before it is destroyed: every function
// is shut down (routes, memslots, traps), the device reset (no DMA in
// flight), then the RAM unmapped from the IOMMU.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/pci_address.h"
#include "base/root.h"
#include "pci/guest_platform.h"
#include "pci/vfio_pci_device.h"
#include "vfio/container.h"
#include "vfio/dma.h"
#include "vfio/vfio_api.h"
#include "vmm/vm.h"

namespace devpass::assign {

// One line per fact worth telling the user ("0000:00:01.0 is guest 00:01.0,
// BAR0 1 MiB at 0xc0000000 mapped, MSI"); also the devices' warnings.
using Log = std::function<void(const std::string&)>;

struct AttachedDevice {
  PciAddress host;
  int guest_slot = 0;
  std::shared_ptr<pci::VfioPciDevice> function;
};

class Passthrough {
 public:
  // Opens the VFIO container. The devices are opened by Attach (a restart
  // opens them again for the new VM).
  static Result<std::unique_ptr<Passthrough>> Open(
      std::shared_ptr<vfio::VfioApi> api, const Root& root,
      std::vector<PciAddress> devices, Log log);
  ~Passthrough();
  Passthrough(const Passthrough&) = delete;
  Passthrough& operator=(const Passthrough&) = delete;

  Status Attach(vmm::Vm& vm);
  void Detach();

  const std::vector<AttachedDevice>& attached() const { return attached_; }
  // Bytes of guest RAM currently mapped in the IOMMU.
  uint64_t dma_mapped_bytes() const;
  // How long step 2 took, for the boot report and benchmarks.
  double dma_map_seconds() const { return dma_map_seconds_; }

 private:
  Passthrough(std::shared_ptr<vfio::Container> container,
              std::vector<PciAddress> devices, Log log)
      : container_(std::move(container)),
        devices_(std::move(devices)),
        log_(std::move(log)) {}
  void Say(const std::string& line) const {
    if (log_) log_(line);
  }

  std::shared_ptr<vfio::Container> container_;
  std::vector<PciAddress> devices_;
  Log log_;
  // Per VM; released by Detach in reverse order.
  std::vector<vfio::DmaMapping> dma_;
  std::vector<pci::RegistrationPtr> kvm_groups_;
  std::vector<AttachedDevice> attached_;
  double dma_map_seconds_ = 0;
};

}  // namespace devpass::assign
