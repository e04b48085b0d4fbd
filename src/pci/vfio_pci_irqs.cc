// Interrupts of a passthrough function: the emulated MSI and MSI-X
// capabilities decide which VFIO interrupt index is live and where KVM
// delivers each vector.
//
// The pieces (linux/vfio.h VFIO_DEVICE_SET_IRQS; KVM irqfd):
//   device --(host IRQ)--> vfio-pci --eventfd--> KVM irqfd --GSI route--> vCPU
// One eventfd per vector is made up front and stays the same for the whole
// run; what changes with the guest's programming is the GSI route behind
// it. A masked vector simply has no irqfd: the eventfd counts what fires
// meanwhile, and KVM injects it as soon as the irqfd is attached again
// (kvm_irqfd_assign checks for an event already pending), which is what
// the pending bit of MSI/MSI-X promises the guest.

#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/eventfd.h>

#include <cerrno>

#include "pci/vfio_pci_device.h"

namespace devpass::pci {
namespace {

Result<UniqueFd> NewEventFd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0)
    return ErrnoError(errno, "eventfd for a passthrough interrupt failed");
  return UniqueFd(fd);
}

// MSI Message Control (PCI Local Bus 3.0 §6.8.1.3).
constexpr uint16_t kMsiEnable = 1 << 0;
// MSI-X Message Control (§6.8.2.3).
constexpr uint16_t kMsixEnable = 1 << 15;
constexpr uint16_t kMsixFunctionMask = 1 << 14;

}  // namespace

Status VfioPciDevice::InitInterrupts() {
  uint32_t vectors = 0;
  if (msi_) vectors = std::max(vectors, msi_->max_vectors);
  if (msix_table_) vectors = std::max(vectors, msix_table_->size());
  for (uint32_t v = 0; v < vectors; ++v) {
    DP_ASSIGN_OR_RETURN(UniqueFd fd, NewEventFd());
    vector_fds_.push_back(std::move(fd));
  }
  routes_.resize(vectors);
  refused_.resize(vectors);
  const vfio::IrqInfo* intx = device_.irq(VFIO_PCI_INTX_IRQ_INDEX);
  if (interrupt_pin_ != 0 && intx && intx->count > 0) {
    DP_ASSIGN_OR_RETURN(intx_trigger_, NewEventFd());
    DP_ASSIGN_OR_RETURN(intx_resample_, NewEventFd());
  }
  std::lock_guard lock(mu_);
  UpdateInterrupts();
  return Ok();
}

bool VfioPciDevice::MsiEnabled() const {
  return msi_ && (ShadowRead32(msi_->offset) >> 16) & kMsiEnable;
}

uint32_t VfioPciDevice::MsiEnabledVectors() const {
  if (!msi_) return 0;
  const uint32_t mme = (ShadowRead32(msi_->offset) >> 20) & 7;
  return std::min(1u << std::min(mme, 5u), msi_->max_vectors);
}

bool VfioPciDevice::MsixEnabled() const {
  return msix_ && (ShadowRead32(msix_->offset) >> 16) & kMsixEnable;
}

bool VfioPciDevice::MsixFunctionMasked() const {
  return msix_ && (ShadowRead32(msix_->offset) >> 16) & kMsixFunctionMask;
}

bool VfioPciDevice::MsiVectorMasked(uint32_t vector) const {
  if (!msi_ || !msi_->per_vector_mask) return false;
  const uint16_t mask_reg = msi_->offset + (msi_->is_64bit ? 16 : 12);
  return (ShadowRead32(mask_reg) >> vector) & 1;
}

std::optional<MsiMessage> VfioPciDevice::MsiMessageFor(uint32_t vector) const {
  if (mode_ == IrqMode::kMsix) {
    const MsixTable::Entry& e = msix_table_->entry(vector);
    if (e.masked || MsixFunctionMasked()) return std::nullopt;
    return e.message;
  }
  if (mode_ != IrqMode::kMsi || vector >= MsiEnabledVectors() ||
      MsiVectorMasked(vector)) {
    return std::nullopt;
  }
  MsiMessage m;
  m.address = ShadowRead32(msi_->offset + 4);
  uint16_t data_reg = msi_->offset + 8;
  if (msi_->is_64bit) {
    m.address |= static_cast<uint64_t>(ShadowRead32(msi_->offset + 8)) << 32;
    data_reg = msi_->offset + 12;
  }
  // With n vectors enabled the function puts the vector number in the low
  // log2(n) bits of the data (§6.8.1.6).
  const uint32_t n = MsiEnabledVectors();
  m.data = ((ShadowRead32(data_reg) & 0xffff) & ~(n - 1)) | vector;
  return m;
}

void VfioPciDevice::UpdateInterrupts() {
  if (shut_down_) return;
  IrqMode want = IrqMode::kNone;
  if (MsixEnabled()) {
    want = IrqMode::kMsix;
  } else if (MsiEnabled()) {
    want = IrqMode::kMsi;
  } else if (intx_trigger_.valid()) {
    want = IrqMode::kIntx;
  }
  const bool msi_resized =
      want == IrqMode::kMsi && mode_ == IrqMode::kMsi &&
      device_.enabled_vectors(VFIO_PCI_MSI_IRQ_INDEX) != MsiEnabledVectors();
  if (want != mode_ || msi_resized) {
    LeaveMode();
    EnterMode(want);
  }
  if (mode_ == IrqMode::kMsi || mode_ == IrqMode::kMsix) {
    for (uint32_t v = 0; v < routes_.size(); ++v) SetRoute(v, MsiMessageFor(v));
  }
}

void VfioPciDevice::SyncMsixVector(uint32_t vector) {
  if (mode_ != IrqMode::kMsix || vector >= routes_.size()) return;
  SetRoute(vector, MsiMessageFor(vector));
}

void VfioPciDevice::EnterMode(IrqMode mode) {
  mode_ = mode;
  Status s = Ok();
  switch (mode) {
    case IrqMode::kNone:
      return;
    case IrqMode::kIntx: {
      s = device_.EnableIntx(intx_trigger_.get(), intx_resample_.get());
      if (s) {
        auto route = platform_.RouteIntx(
            intx_trigger_.get(), intx_resample_.get(), options_.intx_gsi);
        if (route) {
          intx_route_ = std::move(*route);
        } else {
          s = tl::unexpected(route.error());
        }
      }
      break;
    }
    case IrqMode::kMsi: {
      std::vector<int> fds;
      for (uint32_t v = 0; v < MsiEnabledVectors(); ++v)
        fds.push_back(vector_fds_[v].get());
      s = device_.EnableVectors(VFIO_PCI_MSI_IRQ_INDEX, fds);
      break;
    }
    case IrqMode::kMsix: {
      // Every vector at once: kernels before 6.5 cannot grow MSI-X in place
      // (NORESIZE), and a vector the guest leaves masked simply gets no
      // route.
      std::vector<int> fds;
      for (uint32_t v = 0; v < msix_table_->size(); ++v)
        fds.push_back(vector_fds_[v].get());
      s = device_.EnableVectors(VFIO_PCI_MSIX_IRQ_INDEX, fds);
      break;
    }
  }
  if (!s) {
    Log(fmt::format("interrupts ({}) could not be set up: {}",
                    mode == IrqMode::kIntx  ? "INTx"
                    : mode == IrqMode::kMsi ? "MSI"
                                            : "MSI-X",
                    s.error().message));
  }
}

void VfioPciDevice::LeaveMode() {
  DropRoutes();
  intx_route_.reset();
  switch (mode_) {
    case IrqMode::kNone:
      break;
    case IrqMode::kIntx:
      (void)device_.DisableIrqs(VFIO_PCI_INTX_IRQ_INDEX);
      break;
    case IrqMode::kMsi:
      (void)device_.DisableIrqs(VFIO_PCI_MSI_IRQ_INDEX);
      break;
    case IrqMode::kMsix:
      (void)device_.DisableIrqs(VFIO_PCI_MSIX_IRQ_INDEX);
      break;
  }
  mode_ = IrqMode::kNone;
}

void VfioPciDevice::DropRoutes() {
  for (auto& r : routes_) r.reset();
}

void VfioPciDevice::SetRoute(uint32_t vector,
                             std::optional<MsiMessage> message) {
  std::unique_ptr<MsiRoute>& route = routes_[vector];
  if (!message) {
    route.reset();
    return;
  }
  if (route) {
    if (route->Update(*message)) return;
    route.reset();  // refused below, with the message logged once
  } else {
    auto made = platform_.RouteMsi(vector_fds_[vector].get(), *message);
    if (made) {
      route = std::move(*made);
      refused_[vector].reset();
      return;
    }
  }
  // Address 0 is "not programmed": Linux writes an all-zero message when
  // it tears a vector down. Nothing to deliver, nothing to warn about.
  if (message->address == 0) return;
  if (refused_[vector] != message) {
    ++stats_.refused_msi;
    refused_[vector] = message;
    Log(fmt::format(
        "the guest programmed {} vector {} with address {:#x} data {:#x}; "
        "not a local APIC address, so the vector is not delivered",
        mode_ == IrqMode::kMsix ? "MSI-X" : "MSI", vector, message->address,
        message->data));
  }
}

}  // namespace devpass::pci
