#include "vmm/irq_routing.h"

#include <fmt/format.h>

#include <map>
#include <mutex>

namespace devpass::vmm {
namespace {

constexpr uint32_t kIsaIrqs = 16;     // GSI 0-15: PIC and IOAPIC
constexpr uint32_t kIoApicPins = 24;  // KVM_IOAPIC_NUM_PINS

kvm_irq_routing_entry IrqchipEntry(uint32_t gsi, uint32_t chip, uint32_t pin) {
  kvm_irq_routing_entry e{};
  e.gsi = gsi;
  e.type = KVM_IRQ_ROUTING_IRQCHIP;
  e.u.irqchip.irqchip = chip;
  e.u.irqchip.pin = pin;
  return e;
}

tl::unexpected<Error> WithContext(const Error& e, const std::string& what) {
  Error out = e;
  out.message = what + ": " + e.message;
  return tl::unexpected<Error>(std::move(out));
}

}  // namespace

struct IrqRouter::State {
  struct Bound {
    int fd;
    uint32_t gsi;
    int resample_fd;
  };

  std::mutex mu;
  KvmApi* kvm;
  int vm_fd;
  uint32_t gsi_count;
  bool alive = true;
  std::map<uint32_t, pci::MsiMessage> msi;  // GSI -> message
  std::vector<kvm_irq_routing_entry> pushed;
  std::map<uint64_t, Bound> irqfds;  // by handle id
  uint64_t next_id = 1;

  // Sets defaults + `msi` as the VM's table (mu held).
  Status PushLocked() {
    std::vector<kvm_irq_routing_entry> table = DefaultGsiRoutes();
    for (const auto& [gsi, message] : msi) {
      table.push_back(MsiRouteEntry(Gsi(gsi), message));
    }
    DP_RETURN_IF_ERROR(kvm->SetGsiRouting(vm_fd, table));
    pushed = std::move(table);
    return Ok();
  }

  Status DeassignLocked(const Bound& b) {
    kvm_irqfd a{};
    a.fd = static_cast<uint32_t>(b.fd);
    a.gsi = b.gsi;
    a.flags = KVM_IRQFD_FLAG_DEASSIGN;
    return kvm->Irqfd(vm_fd, a);
  }
};

std::vector<kvm_irq_routing_entry> DefaultGsiRoutes() {
  std::vector<kvm_irq_routing_entry> out;
  for (uint32_t gsi = 0; gsi < kIoApicPins; ++gsi) {
    out.push_back(IrqchipEntry(gsi, KVM_IRQCHIP_IOAPIC, gsi));
    if (gsi < kIsaIrqs) {
      out.push_back(IrqchipEntry(
          gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
          gsi % 8));
    }
  }
  return out;
}

kvm_irq_routing_entry MsiRouteEntry(Gsi gsi, const pci::MsiMessage& message) {
  kvm_irq_routing_entry e{};
  e.gsi = gsi.value;
  e.type = KVM_IRQ_ROUTING_MSI;
  e.u.msi.address_lo = static_cast<uint32_t>(message.address);
  e.u.msi.address_hi = static_cast<uint32_t>(message.address >> 32);
  e.u.msi.data = message.data;
  return e;
}

Status CheckMsiAddress(uint64_t address) {
  if (address >= layout::kMsiAddressBase &&
      address - layout::kMsiAddressBase < layout::kMsiAddressSize) {
    return Ok();
  }
  return MakeError(
      ErrorCode::kPermissionDenied,
      fmt::format("a guest may only target the local APIC window {:#x}-{:#x} "
                  "with an MSI; the device was programmed with address {:#x}, "
                  "which devpass does not route (the guest driver or a "
                  "malicious guest wrote it)",
                  layout::kMsiAddressBase,
                  layout::kMsiAddressBase + layout::kMsiAddressSize - 1,
                  address));
}

IrqRouter::IrqRouter(KvmApi& kvm, int vm_fd, uint32_t gsi_count)
    : state_(std::make_shared<State>()) {
  state_->kvm = &kvm;
  state_->vm_fd = vm_fd;
  state_->gsi_count = gsi_count;
}

IrqRouter::~IrqRouter() {
  std::lock_guard lock(state_->mu);
  // The VM fd closes after this: no irqfd may be left pointing at it from
  // our side (the kernel would drop them with the VM, but a handle that
  // outlives the router must not deassign on a closed or reused fd).
  for (const auto& [id, b] : state_->irqfds) (void)state_->DeassignLocked(b);
  state_->irqfds.clear();
  state_->msi.clear();
  state_->alive = false;
}

Result<IrqRouter::MsiGsi> IrqRouter::AllocateMsi(
    const pci::MsiMessage& message) {
  DP_RETURN_IF_ERROR(CheckMsiAddress(message.address));
  State& s = *state_;
  std::lock_guard lock(s.mu);
  uint32_t gsi = layout::kFirstMsiGsi;
  for (const auto& [used, m] : s.msi) {  // ordered: the first gap wins
    if (used != gsi) break;
    ++gsi;
  }
  if (gsi >= s.gsi_count) {
    return MakeError(
        ErrorCode::kBusy,
        fmt::format("no free GSI for another MSI route: KVM allows "
                    "{} GSIs and {} are in use by MSI routes; give "
                    "the guest fewer interrupt vectors",
                    s.gsi_count, s.msi.size()));
  }
  s.msi.emplace(gsi, message);
  if (Status st = s.PushLocked(); !st) {
    s.msi.erase(gsi);
    return WithContext(st.error(),
                       fmt::format("cannot route GSI {} to MSI "
                                   "address {:#x} data {:#x}",
                                   gsi, message.address, message.data));
  }
  MsiGsi out;
  out.state_ = state_;
  out.gsi_ = Gsi(gsi);
  return out;
}

IrqRouter::MsiGsi& IrqRouter::MsiGsi::operator=(MsiGsi&& o) noexcept {
  if (this != &o) {
    Reset();
    state_ = std::move(o.state_);
    gsi_ = o.gsi_;
  }
  return *this;
}

Status IrqRouter::MsiGsi::Update(const pci::MsiMessage& message) {
  if (!state_) {
    return MakeError(ErrorCode::kInternal, "update of a released MSI route");
  }
  DP_RETURN_IF_ERROR(CheckMsiAddress(message.address));
  State& s = *state_;
  std::lock_guard lock(s.mu);
  if (!s.alive) {
    return MakeError(ErrorCode::kConflict, "the VM of this MSI route is gone");
  }
  auto it = s.msi.find(gsi_.value);
  if (it == s.msi.end())
    return MakeError(ErrorCode::kInternal, "MSI route lost");
  if (it->second == message) return Ok();
  const pci::MsiMessage old = it->second;
  it->second = message;
  if (Status st = s.PushLocked(); !st) {
    it->second = old;
    return WithContext(st.error(),
                       fmt::format("cannot re-route GSI {} to MSI "
                                   "address {:#x} data {:#x}",
                                   gsi_.value, message.address, message.data));
  }
  return Ok();
}

void IrqRouter::MsiGsi::Reset() {
  if (!state_) return;
  std::shared_ptr<State> s = std::move(state_);
  std::lock_guard lock(s->mu);
  if (!s->alive) return;
  if (s->msi.erase(gsi_.value)) {
    // A failure leaves a stale route in KVM on a GSI nothing is bound to any
    // more; the next table set (any allocation) replaces it.
    (void)s->PushLocked();
  }
}

Result<IrqRouter::Irqfd> IrqRouter::AssignIrqfd(int eventfd, Gsi gsi,
                                                int resample_fd) {
  State& s = *state_;
  if (eventfd < 0) {
    return MakeError(ErrorCode::kInvalidArgument, "irqfd needs an eventfd");
  }
  if (gsi.value >= s.gsi_count) {
    return MakeError(ErrorCode::kInvalidArgument,
                     fmt::format("GSI {} is beyond the {} KVM allows",
                                 gsi.value, s.gsi_count));
  }
  if (resample_fd >= 0 && gsi.value >= kIoApicPins) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("GSI {} is not an interrupt controller input: "
                    "only a level-triggered IOAPIC input (0-{}) can "
                    "be resampled",
                    gsi.value, kIoApicPins - 1));
  }
  std::lock_guard lock(s.mu);
  kvm_irqfd a{};
  a.fd = static_cast<uint32_t>(eventfd);
  a.gsi = gsi.value;
  if (resample_fd >= 0) {
    a.flags = KVM_IRQFD_FLAG_RESAMPLE;
    a.resamplefd = static_cast<uint32_t>(resample_fd);
  }
  if (Status st = s.kvm->Irqfd(s.vm_fd, a); !st) {
    return WithContext(
        st.error(),
        fmt::format("cannot bind eventfd {} to GSI {}", eventfd, gsi.value));
  }
  Irqfd out;
  out.state_ = state_;
  out.id_ = s.next_id++;
  out.gsi_ = gsi;
  s.irqfds.emplace(out.id_, State::Bound{eventfd, gsi.value, resample_fd});
  return out;
}

IrqRouter::Irqfd& IrqRouter::Irqfd::operator=(Irqfd&& o) noexcept {
  if (this != &o) {
    Reset();
    state_ = std::move(o.state_);
    id_ = o.id_;
    gsi_ = o.gsi_;
  }
  return *this;
}

void IrqRouter::Irqfd::Reset() {
  if (!state_) return;
  std::shared_ptr<State> s = std::move(state_);
  std::lock_guard lock(s->mu);
  auto it = s->irqfds.find(id_);
  if (!s->alive || it == s->irqfds.end()) return;
  (void)s->DeassignLocked(it->second);
  s->irqfds.erase(it);
}

std::vector<kvm_irq_routing_entry> IrqRouter::table() const {
  std::lock_guard lock(state_->mu);
  return state_->pushed;
}

size_t IrqRouter::msi_route_count() const {
  std::lock_guard lock(state_->mu);
  return state_->msi.size();
}

size_t IrqRouter::irqfd_count() const {
  std::lock_guard lock(state_->mu);
  return state_->irqfds.size();
}

}  // namespace devpass::vmm
