#include "assign/passthrough.h"

#include <fmt/format.h>
#include <linux/pci_regs.h>

#include <chrono>
#include <set>

#include "vmm/layout.h"

namespace devpass::assign {
namespace {

std::string Size(uint64_t bytes) {
  if (bytes >= vmm::kGiB && bytes % vmm::kGiB == 0)
    return fmt::format("{} GiB", bytes / vmm::kGiB);
  if (bytes >= vmm::kMiB && bytes % vmm::kMiB == 0)
    return fmt::format("{} MiB", bytes / vmm::kMiB);
  if (bytes >= vmm::kKiB && bytes % vmm::kKiB == 0)
    return fmt::format("{} KiB", bytes / vmm::kKiB);
  return fmt::format("{} B", bytes);
}

}  // namespace

Result<std::unique_ptr<Passthrough>> Passthrough::Open(
    std::shared_ptr<vfio::VfioApi> api, const Root& root,
    std::vector<PciAddress> devices, Log log) {
  std::set<PciAddress> seen;
  for (const PciAddress& a : devices) {
    if (!seen.insert(a).second) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("--device {} is given twice; name each device once",
                      a.ToString()));
    }
    // Fail early, before a VM exists, with hiding's advice.
    DP_RETURN_IF_ERROR(vfio::CheckDeviceIsHidden(root, a).map([](int) {}));
  }
  DP_ASSIGN_OR_RETURN(std::shared_ptr<vfio::Container> container,
                      vfio::Container::Open(std::move(api), root));
  return std::unique_ptr<Passthrough>(new Passthrough(
      std::move(container), std::move(devices), std::move(log)));
}

Passthrough::~Passthrough() { Detach(); }

uint64_t Passthrough::dma_mapped_bytes() const {
  uint64_t total = 0;
  for (const auto& m : dma_) total += m.size();
  return total;
}

Status Passthrough::Attach(vmm::Vm& vm) {
  Detach();
  // 1. Devices, reset before the guest sees them.
  std::vector<vfio::Device> opened;
  for (const PciAddress& a : devices_) {
    DP_ASSIGN_OR_RETURN(vfio::Device d, container_->OpenDevice(a));
    if (auto s = d.Reset(); !s) {
      // Not fatal: QEMU's edu, for one, has no reset method at all.
      Say(fmt::format("{}: not reset before the guest ({})", a.ToString(),
                      s.error().message));
    }
    opened.push_back(std::move(d));
  }
  // 2. All guest RAM in the IOMMU, IOVA = guest-physical address.
  const auto t0 = std::chrono::steady_clock::now();
  for (const vmm::RamRegion& r : vm.memory().regions()) {
    auto m = vfio::DmaMapping::Map(container_,
                                   vm.memory().host_base() + r.host_offset,
                                   r.start.value, r.size);
    if (!m) {
      Detach();
      return tl::unexpected(m.error());
    }
    dma_.push_back(std::move(*m));
  }
  dma_map_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  // 3. KVM-VFIO: each group once.
  std::set<int> groups;
  for (const vfio::Device& d : opened) {
    if (!groups.insert(d.group().number()).second) continue;
    auto r = vm.AddKvmVfioGroup(d.group().fd());
    if (!r) {
      Detach();
      return tl::unexpected(r.error());
    }
    kvm_groups_.push_back(std::move(*r));
  }
  // 4. Guest functions.
  pci::BarWindows windows;
  windows.mmio32_start = vmm::layout::kPciHole.value;
  windows.mmio32_end = vmm::layout::kPciHoleMmioEnd.value;
  windows.mmio64_start = vm.mmio64_base().value;
  windows.mmio64_end = windows.mmio64_start + vmm::layout::kMmio64Size;
  windows.io_start = vmm::layout::kPciIoStart;
  windows.io_end = vmm::layout::kPciIoEnd;
  pci::BarAllocator allocator(windows);
  int slot = 1;
  for (vfio::Device& d : opened) {
    const PciAddress host = d.address();
    const uint8_t pin = d.ReadConfig8(PCI_INTERRUPT_PIN).value_or(0);
    pci::PassthroughOptions options;
    options.windows = windows;
    options.intx_gsi =
        pin >= 1 && pin <= 4 ? vmm::layout::PciIntxGsi(slot, pin).value : 0;
    options.log = log_;
    auto fn = pci::VfioPciDevice::Create(std::move(d), vm.platform(), options);
    Status s =
        fn ? fn.value()->PlaceBars(allocator) : tl::unexpected(fn.error());
    if (s) s = vm.pci_bus().Add(slot, 0, *fn);
    if (!s) {
      Detach();
      return tl::unexpected(
          Error{s.error().code, s.error().sys_errno,
                fmt::format("{}: {}", host.ToString(), s.error().message)});
    }
    std::string bars;
    for (const pci::Bar& b : (*fn)->Bars()) {
      bars += fmt::format(", BAR{} {} at {:#x}", b.index, Size(b.size),
                          (*fn)->BarAddress(b.index));
    }
    Say(fmt::format("{} is guest 00:{:02x}.0{}{}", host.ToString(), slot, bars,
                    options.intx_gsi
                        ? fmt::format(", INTx on GSI {}", options.intx_gsi)
                        : ""));
    attached_.push_back(AttachedDevice{host, slot, std::move(*fn)});
    ++slot;
  }
  Say(fmt::format("guest RAM ({}) mapped for DMA in the IOMMU in {:.0f} ms",
                  Size(dma_mapped_bytes()), dma_map_seconds_ * 1000));
  return Ok();
}

void Passthrough::Detach() {
  for (auto it = attached_.rbegin(); it != attached_.rend(); ++it) {
    it->function->Shutdown();
    // Stop whatever the guest's driver left running before its RAM leaves
    // the IOMMU.
    (void)it->function->device().Reset();
  }
  attached_.clear();  // the VM's bus still holds the functions until it goes
  while (!kvm_groups_.empty()) kvm_groups_.pop_back();
  while (!dma_.empty()) dma_.pop_back();
}

}  // namespace devpass::assign
