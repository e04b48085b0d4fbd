#include "vfio/device.h"

#include <endian.h>
#include <fmt/format.h>
#include <linux/vfio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vfio/group.h"

namespace devpass::vfio {
namespace {

tl::unexpected<Error> Explain(const Error& e, ErrorCode code,
                              std::string message) {
  return tl::unexpected<Error>(Error{code, e.sys_errno, std::move(message)});
}

// INTx, MSI and MSI-X are mutually exclusive in vfio-pci (and in PCI): the
// kernel answers EINVAL when one is enabled while another is.
bool IsExclusiveIndex(uint32_t index) {
  return index == VFIO_PCI_INTX_IRQ_INDEX || index == VFIO_PCI_MSI_IRQ_INDEX ||
         index == VFIO_PCI_MSIX_IRQ_INDEX;
}

}  // namespace

std::string RegionName(uint32_t index) {
  if (index <= VFIO_PCI_BAR5_REGION_INDEX) return fmt::format("BAR{}", index);
  switch (index) {
    case VFIO_PCI_ROM_REGION_INDEX:
      return "ROM";
    case VFIO_PCI_CONFIG_REGION_INDEX:
      return "CONFIG";
    case VFIO_PCI_VGA_REGION_INDEX:
      return "VGA";
    default:
      return fmt::format("REGION{}", index);
  }
}

std::string IrqName(uint32_t index) {
  switch (index) {
    case VFIO_PCI_INTX_IRQ_INDEX:
      return "INTx";
    case VFIO_PCI_MSI_IRQ_INDEX:
      return "MSI";
    case VFIO_PCI_MSIX_IRQ_INDEX:
      return "MSI-X";
    case VFIO_PCI_ERR_IRQ_INDEX:
      return "ERR";
    case VFIO_PCI_REQ_IRQ_INDEX:
      return "REQ";
    default:
      return fmt::format("IRQ{}", index);
  }
}

Result<Device> Device::Create(std::shared_ptr<VfioApi> api,
                              std::shared_ptr<Group> group, VfioFd fd,
                              const PciAddress& address) {
  Device dev(std::move(api), std::move(group), std::move(fd), address);
  DP_ASSIGN_OR_RETURN(dev.info_, dev.api_->GetDeviceInfo(dev.fd()));
  for (uint32_t i = 0; i < dev.info_.num_regions; ++i) {
    auto region = dev.api_->GetRegionInfo(dev.fd(), i);
    if (!region) {
      // vfio-pci answers EINVAL for the VGA region of a non-VGA device: an
      // absent region, like a zero-sized BAR.
      if (region.error().sys_errno != EINVAL)
        return tl::unexpected(region.error());
      RegionInfo absent;
      absent.index = i;
      dev.regions_.push_back(absent);
      continue;
    }
    dev.regions_.push_back(std::move(*region));
  }
  for (uint32_t i = 0; i < dev.info_.num_irqs; ++i) {
    auto irq = dev.api_->GetIrqInfo(dev.fd(), i);
    if (!irq) {
      // EINVAL: the ERR index of a conventional-PCI device.
      if (irq.error().sys_errno != EINVAL) return tl::unexpected(irq.error());
      dev.irqs_.push_back(IrqInfo{i, 0, 0});
      continue;
    }
    dev.irqs_.push_back(*irq);
  }
  return dev;
}

Device::~Device() { DisableAll(); }

Device& Device::operator=(Device&& other) noexcept {
  if (this != &other) {
    DisableAll();
    api_ = std::move(other.api_);
    fd_ = std::move(other.fd_);  // closes ours first
    group_ = std::move(other.group_);
    address_ = other.address_;
    info_ = other.info_;
    regions_ = std::move(other.regions_);
    irqs_ = std::move(other.irqs_);
    irq_fds_ = std::move(other.irq_fds_);
    other.irq_fds_.clear();
  }
  return *this;
}

void Device::DisableAll() {
  if (!fd_.valid()) return;
  // Reverse index order: MSI-X/MSI before INTx, ERR/REQ last-enabled first.
  while (!irq_fds_.empty()) (void)DisableIrqs(irq_fds_.rbegin()->first);
}

bool Device::is_pci() const { return info_.flags & VFIO_DEVICE_FLAGS_PCI; }
bool Device::supports_reset() const {
  return info_.flags & VFIO_DEVICE_FLAGS_RESET;
}

const RegionInfo* Device::region(uint32_t index) const {
  return index < regions_.size() ? &regions_[index] : nullptr;
}

const IrqInfo* Device::irq(uint32_t index) const {
  return index < irqs_.size() ? &irqs_[index] : nullptr;
}

Status Device::ReadRegion(uint32_t index, uint64_t offset,
                          std::span<uint8_t> out) const {
  const RegionInfo* r = region(index);
  if (!r || !(r->flags & VFIO_REGION_INFO_FLAG_READ) ||
      offset + out.size() > r->size) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format(
            "{}: cannot read {} bytes at 0x{:x} of {} (size 0x{:x}{})",
            address_, out.size(), offset, RegionName(index), r ? r->size : 0,
            r && !(r->flags & VFIO_REGION_INFO_FLAG_READ) ? ", not readable"
                                                          : ""));
  }
  size_t done = 0;
  while (done < out.size()) {
    auto n = api_->Pread(fd(), out.data() + done, out.size() - done,
                         r->offset + offset + done);
    if (!n) {
      return Explain(n.error(), n.error().code,
                     fmt::format("{}: read of {} at 0x{:x} failed", address_,
                                 RegionName(index), offset + done));
    }
    if (*n == 0) break;
    done += *n;
  }
  if (done != out.size()) {
    return MakeError(ErrorCode::kIo,
                     fmt::format("{}: short read of {} at 0x{:x}", address_,
                                 RegionName(index), offset));
  }
  return Ok();
}

Status Device::WriteRegion(uint32_t index, uint64_t offset,
                           std::span<const uint8_t> data) const {
  const RegionInfo* r = region(index);
  if (!r || !(r->flags & VFIO_REGION_INFO_FLAG_WRITE) ||
      offset + data.size() > r->size) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format(
            "{}: cannot write {} bytes at 0x{:x} of {} (size 0x{:x}{})",
            address_, data.size(), offset, RegionName(index), r ? r->size : 0,
            r && !(r->flags & VFIO_REGION_INFO_FLAG_WRITE) ? ", not writable"
                                                           : ""));
  }
  size_t done = 0;
  while (done < data.size()) {
    auto n = api_->Pwrite(fd(), data.data() + done, data.size() - done,
                          r->offset + offset + done);
    if (!n) {
      return Explain(n.error(), n.error().code,
                     fmt::format("{}: write of {} at 0x{:x} failed", address_,
                                 RegionName(index), offset + done));
    }
    if (*n == 0) break;
    done += *n;
  }
  if (done != data.size()) {
    return MakeError(ErrorCode::kIo,
                     fmt::format("{}: short write of {} at 0x{:x}", address_,
                                 RegionName(index), offset));
  }
  return Ok();
}

Status Device::ReadConfig(uint64_t offset, std::span<uint8_t> out) const {
  return ReadRegion(VFIO_PCI_CONFIG_REGION_INDEX, offset, out);
}

Status Device::WriteConfig(uint64_t offset,
                           std::span<const uint8_t> data) const {
  return WriteRegion(VFIO_PCI_CONFIG_REGION_INDEX, offset, data);
}

// Config space is little-endian; each access is one pread of its width, which
// vfio-pci's config emulation expects (it splits unaligned accesses).
Result<uint8_t> Device::ReadConfig8(uint64_t offset) const {
  uint8_t v = 0;
  DP_RETURN_IF_ERROR(ReadConfig(offset, {&v, 1}));
  return v;
}

Result<uint16_t> Device::ReadConfig16(uint64_t offset) const {
  uint16_t v = 0;
  DP_RETURN_IF_ERROR(ReadConfig(offset, {reinterpret_cast<uint8_t*>(&v), 2}));
  return le16toh(v);
}

Result<uint32_t> Device::ReadConfig32(uint64_t offset) const {
  uint32_t v = 0;
  DP_RETURN_IF_ERROR(ReadConfig(offset, {reinterpret_cast<uint8_t*>(&v), 4}));
  return le32toh(v);
}

Status Device::WriteConfig16(uint64_t offset, uint16_t value) const {
  uint16_t v = htole16(value);
  return WriteConfig(offset, {reinterpret_cast<const uint8_t*>(&v), 2});
}

Status Device::WriteConfig32(uint64_t offset, uint32_t value) const {
  uint32_t v = htole32(value);
  return WriteConfig(offset, {reinterpret_cast<const uint8_t*>(&v), 4});
}

Result<std::vector<uint8_t>> Device::ReadConfigSpace() const {
  const RegionInfo* r = region(VFIO_PCI_CONFIG_REGION_INDEX);
  if (!r || r->size == 0) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("{} has no VFIO config region (not a PCI device?)",
                    address_));
  }
  std::vector<uint8_t> config(std::min<uint64_t>(r->size, 4096));
  DP_RETURN_IF_ERROR(ReadConfig(0, config));
  return config;
}

Result<Mapping> Device::MapRegion(uint32_t index, uint64_t offset,
                                  uint64_t size) const {
  const RegionInfo* r = region(index);
  if (!r || r->size == 0) {
    return MakeError(ErrorCode::kNotFound,
                     fmt::format("{} has no {}", address_, RegionName(index)));
  }
  if (!(r->flags & VFIO_REGION_INFO_FLAG_MMAP)) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format(
            "{} of {} cannot be mmapped (I/O ports, or the kernel keeps "
            "it trapped); use ReadRegion/WriteRegion",
            RegionName(index), address_));
  }
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  if (size == 0 || offset % page || offset + size > r->size ||
      offset + size < offset) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format(
            "cannot map 0x{:x} bytes at 0x{:x} of {} (size 0x{:x}): the "
            "range must be non-empty, page aligned and inside the region",
            size, offset, RegionName(index), r->size));
  }
  if (r->sparse_areas) {
    bool inside = false;
    std::string areas;
    for (const auto& a : *r->sparse_areas) {
      inside |= offset >= a.offset && offset + size <= a.offset + a.size;
      areas += fmt::format("{}0x{:x}+0x{:x}", areas.empty() ? "" : ", ",
                           a.offset, a.size);
    }
    if (!inside) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("0x{:x}+0x{:x} of {} is not inside one mmappable area of "
                      "{} ({}); the rest (usually the MSI-X table) must be "
                      "accessed with ReadRegion/WriteRegion",
                      offset, size, RegionName(index), address_,
                      areas.empty() ? "none" : areas));
    }
  }
  int prot = 0;
  if (r->flags & VFIO_REGION_INFO_FLAG_READ) prot |= PROT_READ;
  if (r->flags & VFIO_REGION_INFO_FLAG_WRITE) prot |= PROT_WRITE;
  auto addr = api_->Mmap(fd(), r->offset + offset, size, prot);
  if (!addr) {
    return Explain(
        addr.error(), addr.error().code,
        fmt::format("cannot mmap {} of {}", RegionName(index), address_));
  }
  return Mapping(api_, *addr, size, index, offset);
}

Result<Mapping> Device::MapRegion(uint32_t index) const {
  const RegionInfo* r = region(index);
  if (r && r->sparse_areas &&
      !(r->sparse_areas->size() == 1 && (*r->sparse_areas)[0].offset == 0 &&
        (*r->sparse_areas)[0].size == r->size)) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("{} of {} is mmappable only in {} separate areas; map them "
                    "one by one with MapRegion(index, offset, size)",
                    RegionName(index), address_, r->sparse_areas->size()));
  }
  return MapRegion(index, 0, r ? r->size : 0);
}

Status Device::SetIrqs(const IrqSet& set) const {
  const IrqInfo* info = irq(set.index);
  if (!info || info->count == 0) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("{} has no {} interrupts", address_, IrqName(set.index)));
  }
  if (set.count && set.start + set.count > info->count) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} has {} {} vectors; vectors {}..{} do not exist",
                    address_, info->count, IrqName(set.index), set.start,
                    set.start + set.count - 1));
  }
  if (auto r = api_->SetIrqs(fd(), set); !r) {
    return Explain(
        r.error(), r.error().code,
        fmt::format(
            "VFIO_DEVICE_SET_IRQS for {} of {} (vectors {}+{}, flags 0x{:x}) "
            "was refused",
            IrqName(set.index), address_, set.start, set.count, set.flags));
  }
  return Ok();
}

Status Device::EnableIndex(uint32_t index, const std::vector<int>& fds) {
  if (IsExclusiveIndex(index)) {
    for (uint32_t other : {VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
                           VFIO_PCI_MSIX_IRQ_INDEX}) {
      if (other != index && irq_fds_.count(other))
        DP_RETURN_IF_ERROR(DisableIrqs(other));
    }
  }
  IrqSet set{VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
             index,
             0,
             static_cast<uint32_t>(fds.size()),
             {fds.begin(), fds.end()},
             {}};
  DP_RETURN_IF_ERROR(SetIrqs(set));
  irq_fds_[index] = fds;
  return Ok();
}

Status Device::EnableIntx(int trigger_fd, int unmask_fd) {
  DP_RETURN_IF_ERROR(EnableIndex(VFIO_PCI_INTX_IRQ_INDEX, {trigger_fd}));
  if (unmask_fd >= 0) {
    DP_RETURN_IF_ERROR(
        SetIrqs({VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_UNMASK,
                 VFIO_PCI_INTX_IRQ_INDEX,
                 0,
                 1,
                 {unmask_fd},
                 {}}));
  }
  return Ok();
}

Status Device::UnmaskIntx() {
  return SetIrqs({VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
                  VFIO_PCI_INTX_IRQ_INDEX,
                  0,
                  1,
                  {},
                  {}});
}

Status Device::MaskIntx() {
  return SetIrqs({VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK,
                  VFIO_PCI_INTX_IRQ_INDEX,
                  0,
                  1,
                  {},
                  {}});
}

Status Device::EnableVectors(uint32_t index, std::span<const int> fds) {
  if (fds.empty()) return DisableIrqs(index);
  // A different vector count means a new allocation: the kernel only
  // changes eventfds within the count enabled before.
  auto it = irq_fds_.find(index);
  if (it != irq_fds_.end() && it->second.size() != fds.size()) {
    DP_RETURN_IF_ERROR(DisableIrqs(index));
  }
  return EnableIndex(index, {fds.begin(), fds.end()});
}

Status Device::SetVector(uint32_t index, uint32_t vector, int fd) {
  const IrqInfo* info = irq(index);
  if (!info || vector >= info->count) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} has {} {} vectors; vector {} does not exist", address_,
                    info ? info->count : 0, IrqName(index), vector));
  }
  auto it = irq_fds_.find(index);
  if (it == irq_fds_.end()) {
    std::vector<int> fds(vector + 1, -1);
    fds[vector] = fd;
    return EnableIndex(index, fds);
  }
  std::vector<int>& current = it->second;
  if (vector < current.size()) {
    // Within the enabled block the kernel swaps one eventfd in place.
    DP_RETURN_IF_ERROR(
        SetIrqs({VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                 index,
                 vector,
                 1,
                 {fd},
                 {}}));
    current[vector] = fd;
    return Ok();
  }
  if (index == VFIO_PCI_MSIX_IRQ_INDEX &&
      !(info->flags & VFIO_IRQ_INFO_NORESIZE)) {
    // Kernels with dynamic MSI-X (6.5+) clear NORESIZE and allocate the new
    // vector on the fly, leaving the others untouched.
    DP_RETURN_IF_ERROR(
        SetIrqs({VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                 index,
                 vector,
                 1,
                 {fd},
                 {}}));
    current.resize(vector + 1, -1);
    current[vector] = fd;
    return Ok();
  }
  // NORESIZE (MSI always; MSI-X on 6.1): the vector block is allocated when
  // the index is enabled and cannot grow, so disable and re-enable it with
  // every vector. An interrupt raised in between can be lost; the guest side
  // re-checks pending bits (MSI-X PBA) after growing.
  std::vector<int> grown = current;
  grown.resize(vector + 1, -1);
  grown[vector] = fd;
  DP_RETURN_IF_ERROR(DisableIrqs(index));
  return EnableIndex(index, grown);
}

Status Device::DisableIrqs(uint32_t index) {
  irq_fds_.erase(index);
  return SetIrqs({VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                  index,
                  0,
                  0,
                  {},
                  {}});
}

uint32_t Device::enabled_vectors(uint32_t index) const {
  auto it = irq_fds_.find(index);
  return it == irq_fds_.end() ? 0 : static_cast<uint32_t>(it->second.size());
}

Status Device::Reset() const {
  auto r = api_->Reset(fd());
  if (r) return Ok();
  const Error& e = r.error();
  if (e.sys_errno == EINVAL || e.sys_errno == ENOTTY || e.sys_errno == ENODEV) {
    return Explain(
        e, ErrorCode::kUnsupported,
        fmt::format(
            "no reset: the kernel knows no way to reset {} (no FLR, PM or "
            "bus reset{}); its state carries over to the next user",
            address_,
            supports_reset() ? "" : "; VFIO_DEVICE_FLAGS_RESET is clear"));
  }
  return Explain(e, e.code,
                 fmt::format("VFIO_DEVICE_RESET of {} failed", address_));
}

Result<HotResetInfo> Device::GetHotResetInfo() const {
  auto r = api_->GetHotResetInfo(fd());
  if (r) return r;
  const Error& e = r.error();
  if (e.sys_errno == ENODEV || e.sys_errno == EINVAL || e.sys_errno == ENOTTY) {
    return Explain(
        e, ErrorCode::kUnsupported,
        fmt::format("{} cannot be hot reset (no bus or slot reset reaches it)",
                    address_));
  }
  return Explain(
      e, e.code,
      fmt::format("VFIO_DEVICE_GET_PCI_HOT_RESET_INFO of {} failed", address_));
}

}  // namespace devpass::vfio
