#include "vfio/fake_vfio_api.h"

#include <fmt/format.h>
#include <linux/vfio.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "base/pci_address.h"
#include "vfio/caps.h"

namespace devpass::vfio {
namespace {

constexpr int kIndexShift = 40;  // vfio-pci: VFIO_PCI_INDEX_TO_OFFSET

bool Exclusive(uint32_t index) { return index <= VFIO_PCI_MSIX_IRQ_INDEX; }

}  // namespace

FakeVfioApi::FakeVfioApi() : api_version(VFIO_API_VERSION) {
  extensions = {VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU, VFIO_UNMAP_ALL};
  // Like an Intel IOMMU with 48-bit IOVAs: the MSI window is carved out.
  iommu_info.flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;
  iommu_info.iova_pgsizes = 0x40201000;  // 4 KiB | 2 MiB | 1 GiB
  iommu_info.iova_ranges = {{0x0, 0xfedfffff}, {0xfef00000, 0xffffffffffff}};
  iommu_info.dma_avail = 65535;
}

FakeVfioApi::~FakeVfioApi() = default;

void FakeVfioApi::AddGroup(int number, bool viable) {
  groups_[number].viable = viable;
}

void FakeVfioApi::SetGroupViable(int number, bool viable) {
  groups_[number].viable = viable;
}

void FakeVfioApi::AddDevice(int group, FakeDeviceSpec spec) {
  if (!groups_.count(group)) AddGroup(group);
  for (size_t i = 0; i < spec.regions.size(); ++i) {
    auto& r = spec.regions[i];
    r.info.index = static_cast<uint32_t>(i);
    if (r.info.offset == 0)
      r.info.offset = static_cast<uint64_t>(i) << kIndexShift;
    r.data.resize(r.info.size);
  }
  for (size_t i = 0; i < spec.irqs.size(); ++i)
    spec.irqs[i].index = static_cast<uint32_t>(i);
  // The device itself appears in its own hot-reset list with its group.
  if (spec.hot_reset) {
    if (auto self = PciAddress::Parse(spec.name)) {
      for (auto& d : spec.hot_reset->devices) {
        if (d.segment == self->domain() && d.bus == self->bus() &&
            d.devfn == (self->device() << 3 | self->function())) {
          d.group_id = static_cast<uint32_t>(group);
        }
      }
    }
  }
  std::string name = spec.name;
  devices_[name] = FakeDevice{std::move(spec), group, {}, -1, false};
}

void FakeVfioApi::FailNext(const std::string& op, int err, int times) {
  failures_[op] = {err, times};
}

std::vector<std::string> FakeVfioApi::Calls(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& line : log) {
    if (line.starts_with(prefix)) out.push_back(line);
  }
  return out;
}

std::vector<uint8_t>& FakeVfioApi::RegionData(const std::string& device,
                                              uint32_t index) {
  return devices_.at(device).spec.regions.at(index).data;
}

std::vector<int32_t> FakeVfioApi::EnabledVectors(const std::string& device,
                                                 uint32_t index) const {
  const auto& enabled = devices_.at(device).enabled;
  auto it = enabled.find(index);
  return it == enabled.end() ? std::vector<int32_t>{} : it->second;
}

bool FakeVfioApi::intx_masked(const std::string& device) const {
  return devices_.at(device).intx_masked;
}

bool FakeVfioApi::FireIrq(const std::string& device, uint32_t index,
                          uint32_t vector) {
  auto& dev = devices_.at(device);
  auto it = dev.enabled.find(index);
  if (it == dev.enabled.end() || vector >= it->second.size() ||
      it->second[vector] < 0) {
    return false;
  }
  if (index == VFIO_PCI_INTX_IRQ_INDEX) {
    if (dev.intx_masked) return false;  // a masked line does not signal
    dev.intx_masked = true;             // AUTOMASKED
  }
  uint64_t one = 1;
  return ::write(it->second[vector], &one, sizeof(one)) == sizeof(one);
}

int FakeVfioApi::TakeFailure(const std::string& op) {
  auto it = failures_.find(op);
  if (it == failures_.end()) return 0;
  int err = it->second.first;
  if (--it->second.second <= 0) failures_.erase(it);
  log.push_back(fmt::format("{} -> errno {}", op, err));
  return err;
}

tl::unexpected<Error> FakeVfioApi::Fail(int err, const std::string& what) {
  return ErrnoError(err, fmt::format("fake {} failed", what));
}

int FakeVfioApi::NewFd(Fd fd) {
  int n = next_fd_++;
  fds_[n] = std::move(fd);
  return n;
}

Result<int> FakeVfioApi::Open(const std::filesystem::path& path) {
  const std::string leaf = path.filename().string();
  const std::string dir = path.parent_path().filename().string();
  if (dir != "vfio") return Fail(ENOENT, "open " + path.string());
  if (leaf == "vfio") {
    if (int e = TakeFailure("OPEN_CONTAINER")) return Fail(e, "open container");
    int fd = NewFd({Kind::kContainer, -1, ""});
    containers_[fd] = {};
    log.push_back(fmt::format("open /dev/vfio/vfio -> {}", fd));
    return fd;
  }
  if (int e = TakeFailure("OPEN_GROUP")) return Fail(e, "open group");
  int number = -1;
  auto [end, ec] =
      std::from_chars(leaf.data(), leaf.data() + leaf.size(), number);
  if (ec != std::errc() || end != leaf.data() + leaf.size()) {
    return Fail(ENOENT, "open " + path.string());
  }
  auto it = groups_.find(number);
  if (it == groups_.end()) return Fail(ENOENT, "open " + path.string());
  if (it->second.fd >= 0) return Fail(EBUSY, "open " + path.string());
  int fd = NewFd({Kind::kGroup, number, ""});
  it->second.fd = fd;
  log.push_back(fmt::format("open /dev/vfio/{} -> {}", number, fd));
  return fd;
}

void FakeVfioApi::Detach(int group_number) {
  auto& g = groups_.at(group_number);
  if (g.container < 0) return;
  auto& c = containers_[g.container];
  g.container = -1;
  if (--c.groups == 0 && c.iommu_type != 0) {
    c.iommu_type = 0;  // the kernel releases the IOMMU with the last group
    live_dma.clear();
  }
}

void FakeVfioApi::Close(int fd) {
  log.push_back(fmt::format("close {}", fd));
  auto it = fds_.find(fd);
  if (it == fds_.end()) return;
  if (it->second.kind == Kind::kGroup) {
    Detach(it->second.group);
    groups_.at(it->second.group).fd = -1;
  } else if (it->second.kind == Kind::kDevice) {
    auto& dev = devices_.at(it->second.device);
    dev.enabled.clear();  // closing the device fd frees its interrupts
    dev.intx_unmask_fd = -1;
  } else {
    containers_.erase(fd);
  }
  fds_.erase(it);
}

Result<int> FakeVfioApi::GetApiVersion(int container) {
  log.push_back(fmt::format("GET_API_VERSION {}", container));
  if (int e = TakeFailure("GET_API_VERSION")) return Fail(e, "GET_API_VERSION");
  return api_version;
}

Result<bool> FakeVfioApi::CheckExtension(int container, uint32_t ext) {
  log.push_back(fmt::format("CHECK_EXTENSION {} {}", container, ext));
  if (int e = TakeFailure("CHECK_EXTENSION")) return Fail(e, "CHECK_EXTENSION");
  return extensions.count(ext) > 0;
}

Status FakeVfioApi::SetIommu(int container, uint32_t iommu_type) {
  log.push_back(fmt::format("SET_IOMMU {} type={}", container, iommu_type));
  if (int e = TakeFailure("SET_IOMMU")) return Fail(e, "SET_IOMMU");
  auto& c = containers_[container];
  if (c.groups == 0 || !extensions.count(iommu_type))
    return Fail(EINVAL, "SET_IOMMU");
  if (c.iommu_type != 0) return Fail(EBUSY, "SET_IOMMU");
  c.iommu_type = iommu_type;
  iommu_type_ = iommu_type;
  return Ok();
}

Result<IommuInfo> FakeVfioApi::GetIommuInfo(int container) {
  log.push_back(fmt::format("IOMMU_GET_INFO {}", container));
  if (int e = TakeFailure("IOMMU_GET_INFO")) return Fail(e, "IOMMU_GET_INFO");
  if (containers_[container].iommu_type == 0)
    return Fail(EINVAL, "IOMMU_GET_INFO");
  IommuInfo info = iommu_info;
  if (info.dma_avail)
    *info.dma_avail -= std::min<uint32_t>(*info.dma_avail, live_dma.size());
  return ParseIommuInfo(EncodeIommuInfo(info));
}

Status FakeVfioApi::MapDma(int container, const DmaMapArgs& a) {
  log.push_back(fmt::format("MAP_DMA {} iova=0x{:x} size=0x{:x}", container,
                            a.iova, a.size));
  dma_maps.push_back(a);
  if (int e = TakeFailure("MAP_DMA")) return Fail(e, "MAP_DMA");
  if (containers_[container].iommu_type == 0) return Fail(EINVAL, "MAP_DMA");
  uint64_t locked = a.size;
  for (const auto& [iova, size] : live_dma) {
    if (a.iova < iova + size && iova < a.iova + a.size)
      return Fail(EEXIST, "MAP_DMA");
    locked += size;
  }
  if (locked > memlock_limit) return Fail(ENOMEM, "MAP_DMA");
  live_dma[a.iova] = a.size;
  return Ok();
}

Result<uint64_t> FakeVfioApi::UnmapDma(int container, uint64_t iova,
                                       uint64_t size) {
  log.push_back(fmt::format("UNMAP_DMA {} iova=0x{:x} size=0x{:x}", container,
                            iova, size));
  if (int e = TakeFailure("UNMAP_DMA")) return Fail(e, "UNMAP_DMA");
  auto it = live_dma.find(iova);
  if (it == live_dma.end() || it->second != size) return uint64_t{0};
  live_dma.erase(it);
  return size;
}

Result<uint32_t> FakeVfioApi::GetGroupStatus(int group) {
  log.push_back(fmt::format("GROUP_GET_STATUS {}", group));
  if (int e = TakeFailure("GROUP_GET_STATUS"))
    return Fail(e, "GROUP_GET_STATUS");
  const auto& g = groups_.at(fds_.at(group).group);
  return (g.viable ? VFIO_GROUP_FLAGS_VIABLE : 0u) |
         (g.container >= 0 ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0u);
}

Status FakeVfioApi::SetContainer(int group, int container) {
  log.push_back(fmt::format("GROUP_SET_CONTAINER {} {}", group, container));
  if (int e = TakeFailure("SET_CONTAINER")) return Fail(e, "SET_CONTAINER");
  auto& g = groups_.at(fds_.at(group).group);
  if (!g.viable) return Fail(EPERM, "SET_CONTAINER");
  if (g.container >= 0) return Fail(EINVAL, "SET_CONTAINER");
  g.container = container;
  ++containers_[container].groups;
  return Ok();
}

Status FakeVfioApi::UnsetContainer(int group) {
  log.push_back(fmt::format("GROUP_UNSET_CONTAINER {}", group));
  auto& g = groups_.at(fds_.at(group).group);
  if (g.container < 0) return Fail(EINVAL, "UNSET_CONTAINER");
  Detach(fds_.at(group).group);
  return Ok();
}

Result<int> FakeVfioApi::GetDeviceFd(int group, const std::string& name) {
  if (int e = TakeFailure("GET_DEVICE_FD")) return Fail(e, "GET_DEVICE_FD");
  int number = fds_.at(group).group;
  const auto& g = groups_.at(number);
  if (g.container < 0 || containers_[g.container].iommu_type == 0) {
    return Fail(EINVAL, "GET_DEVICE_FD");
  }
  auto it = devices_.find(name);
  if (it == devices_.end() || it->second.group != number)
    return Fail(ENODEV, "GET_DEVICE_FD");
  int fd = NewFd({Kind::kDevice, number, name});
  log.push_back(fmt::format("GET_DEVICE_FD {} {} -> {}", group, name, fd));
  return fd;
}

Result<FakeVfioApi::FakeDevice*> FakeVfioApi::DeviceFor(int fd,
                                                        const std::string& op) {
  if (int e = TakeFailure(op)) return Fail(e, op);
  auto it = fds_.find(fd);
  if (it == fds_.end() || it->second.kind != Kind::kDevice)
    return Fail(EBADF, op);
  return &devices_.at(it->second.device);
}

Result<DeviceInfo> FakeVfioApi::GetDeviceInfo(int device) {
  log.push_back(fmt::format("DEVICE_GET_INFO {}", device));
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "DEVICE_GET_INFO"));
  return DeviceInfo{d->spec.flags,
                    static_cast<uint32_t>(d->spec.regions.size()),
                    static_cast<uint32_t>(d->spec.irqs.size())};
}

Result<RegionInfo> FakeVfioApi::GetRegionInfo(int device, uint32_t index) {
  log.push_back(fmt::format("GET_REGION_INFO {} {}", device, index));
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "GET_REGION_INFO"));
  if (index >= d->spec.regions.size()) return Fail(EINVAL, "GET_REGION_INFO");
  // Through the kernel's byte encoding, so callers get exactly what the real
  // seam returns (FLAG_CAPS set when caps exist) and the parser is exercised.
  return ParseRegionInfo(EncodeRegionInfo(d->spec.regions[index].info));
}

Result<IrqInfo> FakeVfioApi::GetIrqInfo(int device, uint32_t index) {
  log.push_back(fmt::format("GET_IRQ_INFO {} {}", device, index));
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "GET_IRQ_INFO"));
  if (index >= d->spec.irqs.size()) return Fail(EINVAL, "GET_IRQ_INFO");
  return d->spec.irqs[index];
}

Status FakeVfioApi::SetIrqs(int device, const IrqSet& s) {
  log.push_back(
      fmt::format("SET_IRQS {} index={} start={} count={} flags=0x{:x}", device,
                  s.index, s.start, s.count, s.flags));
  irq_sets.push_back(s);
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "SET_IRQS"));
  if (s.index >= d->spec.irqs.size()) return Fail(EINVAL, "SET_IRQS");
  const IrqInfo& info = d->spec.irqs[s.index];
  const uint32_t action = s.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
  const uint32_t data = s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
  auto enabled = d->enabled.find(s.index);
  if (action == VFIO_IRQ_SET_ACTION_TRIGGER && data == VFIO_IRQ_SET_DATA_NONE &&
      s.count == 0) {
    d->enabled.erase(s.index);  // disable the whole index
    if (s.index == VFIO_PCI_INTX_IRQ_INDEX) d->intx_unmask_fd = -1;
    return Ok();
  }
  if (s.count == 0 || s.start + s.count > info.count)
    return Fail(EINVAL, "SET_IRQS");
  if (action == VFIO_IRQ_SET_ACTION_TRIGGER &&
      data == VFIO_IRQ_SET_DATA_EVENTFD) {
    if (s.eventfds.size() != s.count) return Fail(EINVAL, "SET_IRQS");
    if (enabled == d->enabled.end()) {
      if (Exclusive(s.index)) {
        for (uint32_t other = 0; other <= VFIO_PCI_MSIX_IRQ_INDEX; ++other) {
          if (other != s.index && d->enabled.count(other))
            return Fail(EINVAL, "SET_IRQS");
        }
      }
      std::vector<int32_t> fds(s.start + s.count, -1);
      std::copy(s.eventfds.begin(), s.eventfds.end(), fds.begin() + s.start);
      d->enabled[s.index] = fds;
      if (s.index == VFIO_PCI_INTX_IRQ_INDEX) d->intx_masked = false;
      return Ok();
    }
    auto& fds = enabled->second;
    if (s.start + s.count > fds.size()) {
      // Growing in place needs dynamic MSI-X (6.5+); NORESIZE refuses it.
      if (s.index != VFIO_PCI_MSIX_IRQ_INDEX ||
          (info.flags & VFIO_IRQ_INFO_NORESIZE)) {
        return Fail(EINVAL, "SET_IRQS");
      }
      fds.resize(s.start + s.count, -1);
    }
    std::copy(s.eventfds.begin(), s.eventfds.end(), fds.begin() + s.start);
    return Ok();
  }
  if (s.index != VFIO_PCI_INTX_IRQ_INDEX || enabled == d->enabled.end()) {
    return Fail(EINVAL, "SET_IRQS");  // mask/unmask: INTx only, once enabled
  }
  if (action == VFIO_IRQ_SET_ACTION_UNMASK &&
      data == VFIO_IRQ_SET_DATA_EVENTFD) {
    d->intx_unmask_fd = s.eventfds.empty() ? -1 : s.eventfds[0];
  } else if (action == VFIO_IRQ_SET_ACTION_UNMASK) {
    d->intx_masked = false;
  } else if (action == VFIO_IRQ_SET_ACTION_MASK) {
    d->intx_masked = true;
  } else {
    return Fail(EINVAL, "SET_IRQS");
  }
  return Ok();
}

Status FakeVfioApi::Reset(int device) {
  log.push_back(fmt::format("DEVICE_RESET {}", device));
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "RESET"));
  if (d->spec.reset_errno) return Fail(d->spec.reset_errno, "RESET");
  return Ok();
}

Result<HotResetInfo> FakeVfioApi::GetHotResetInfo(int device) {
  log.push_back(fmt::format("GET_PCI_HOT_RESET_INFO {}", device));
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "HOT_RESET_INFO"));
  if (!d->spec.hot_reset) return Fail(ENODEV, "HOT_RESET_INFO");
  return *d->spec.hot_reset;
}

Result<FakeRegion*> FakeVfioApi::RegionAt(FakeDevice& dev, uint64_t offset,
                                          size_t len, uint64_t* at) {
  uint64_t index = offset >> kIndexShift;
  if (index >= dev.spec.regions.size()) return Fail(EINVAL, "region access");
  FakeRegion& r = dev.spec.regions[index];
  *at = offset - r.info.offset;
  if (*at + len > r.data.size()) return Fail(EINVAL, "region access");
  return &r;
}

Result<size_t> FakeVfioApi::Pread(int device, void* buf, size_t len,
                                  uint64_t offset) {
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "PREAD"));
  uint64_t at = 0;
  DP_ASSIGN_OR_RETURN(FakeRegion * r, RegionAt(*d, offset, len, &at));
  std::memcpy(buf, r->data.data() + at, len);
  return len;
}

Result<size_t> FakeVfioApi::Pwrite(int device, const void* buf, size_t len,
                                   uint64_t offset) {
  log.push_back(fmt::format("PWRITE {} 0x{:x} len={}", device, offset, len));
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "PWRITE"));
  uint64_t at = 0;
  DP_ASSIGN_OR_RETURN(FakeRegion * r, RegionAt(*d, offset, len, &at));
  std::memcpy(r->data.data() + at, buf, len);
  return len;
}

Result<void*> FakeVfioApi::Mmap(int device, uint64_t offset, size_t len,
                                int prot) {
  (void)prot;
  log.push_back(fmt::format("MMAP {} 0x{:x} len=0x{:x}", device, offset, len));
  DP_ASSIGN_OR_RETURN(FakeDevice * d, DeviceFor(device, "MMAP"));
  uint64_t at = 0;
  DP_ASSIGN_OR_RETURN(FakeRegion * r, RegionAt(*d, offset, len, &at));
  if (!(r->info.flags & VFIO_REGION_INFO_FLAG_MMAP))
    return Fail(EINVAL, "MMAP");
  return static_cast<void*>(r->data.data() + at);
}

void FakeVfioApi::Munmap(void* addr, size_t len) {
  (void)addr;
  log.push_back(fmt::format("MUNMAP len=0x{:x}", len));
}

}  // namespace devpass::vfio
