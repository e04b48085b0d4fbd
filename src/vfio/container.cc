#include "vfio/container.h"

#include <fmt/format.h>
#include <linux/vfio.h>

#include <algorithm>
#include <charconv>

#include "base/fs.h"
#include "host/iommu_group.h"

namespace devpass::vfio {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

uint64_t CeilMiB(uint64_t bytes) { return (bytes + kMiB - 1) / kMiB; }

// Keeps the errno of `e` and replaces the message (the seam's messages are
// neutral; this is where the context is known).
tl::unexpected<Error> Explain(const Error& e, ErrorCode code,
                              std::string message) {
  return tl::unexpected<Error>(Error{code, e.sys_errno, std::move(message)});
}

bool IsVfioPciDriver(std::string_view driver) {
  // vfio-pci itself and variant drivers (mlx5_vfio_pci, hisi_acc_vfio_pci...).
  return driver == "vfio-pci" || driver.ends_with("vfio_pci") ||
         driver.ends_with("vfio-pci");
}

// "0000:00:02.0 (i915), 0000:00:02.1 (snd_hda_intel)".
std::string DescribeMembers(const std::vector<host::GroupMember>& members) {
  std::string out;
  for (const auto& m : members) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} ({})", m.address.ToString(),
                       m.driver.empty() ? "no driver" : m.driver);
  }
  return out;
}

}  // namespace

Result<int> CheckDeviceIsHidden(const Root& root, const PciAddress& address) {
  const std::string bdf = address.ToString();
  auto dev_dir = root.Sys("bus/pci/devices/" + bdf);
  if (!Exists(dev_dir)) {
    return MakeError(
        ErrorCode::kNotFound,
        fmt::format("no PCI device {} ({} does not exist); `devpass list` "
                    "shows the devices of this host",
                    bdf, root.Display(dev_dir)));
  }
  auto driver = ReadLinkName(dev_dir / "driver");
  if (!driver || !IsVfioPciDriver(*driver)) {
    return MakeError(
        ErrorCode::kConflict,
        fmt::format(
            "{} is {}, so VFIO cannot open it; run `devpass hide {}` first",
            bdf,
            driver ? fmt::format("bound to {}, not vfio-pci", *driver)
                   : std::string("not bound to vfio-pci (it has no driver)"),
            bdf));
  }
  auto group = ReadLinkName(dev_dir / "iommu_group");
  if (!group) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("{} has no IOMMU group ({} is missing): the IOMMU is off. "
                    "Enable VT-d/AMD-Vi in the firmware and boot with "
                    "intel_iommu=on (Intel) or iommu=pt (AMD); `devpass check` "
                    "tells more",
                    bdf, root.Display(dev_dir / "iommu_group")));
  }
  int number = -1;
  auto [end, ec] =
      std::from_chars(group->data(), group->data() + group->size(), number);
  if (ec != std::errc() || end != group->data() + group->size()) {
    return MakeError(
        ErrorCode::kInternal,
        fmt::format("{} points to an IOMMU group named '{}', not a number",
                    root.Display(dev_dir / "iommu_group"), *group));
  }
  return number;
}

Result<std::shared_ptr<Container>> Container::Open(std::shared_ptr<VfioApi> api,
                                                   Root root) {
  auto path = root.Dev("vfio/vfio");
  auto fd = api->Open(path);
  if (!fd) {
    const Error& e = fd.error();
    if (e.sys_errno == ENOENT || e.sys_errno == ENODEV) {
      return Explain(
          e, ErrorCode::kNotFound,
          fmt::format(
              "{} does not exist: the VFIO driver is not loaded. Run "
              "`modprobe vfio-pci` as root (or `devpass hide <bdf>`, which "
              "loads it); `devpass check` verifies the host",
              root.Display(path)));
    }
    if (e.sys_errno == EACCES || e.sys_errno == EPERM) {
      return Explain(
          e, ErrorCode::kPermissionDenied,
          fmt::format("cannot open {}: permission denied; run as root",
                      root.Display(path)));
    }
    return Explain(e, e.code,
                   fmt::format("cannot open {}", root.Display(path)));
  }
  auto container = std::shared_ptr<Container>(
      new Container(api, std::move(root), VfioFd(api, *fd)));

  auto version = api->GetApiVersion(container->fd());
  if (!version) return tl::unexpected(version.error());
  if (*version != VFIO_API_VERSION) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format(
            "the kernel's VFIO API version is {}, devpass speaks version "
            "{} (linux/vfio.h VFIO_API_VERSION); this kernel is not "
            "supported",
            *version, VFIO_API_VERSION));
  }
  static constexpr std::pair<uint32_t, const char*> kExtensions[] = {
      {VFIO_TYPE1_IOMMU, "TYPE1"},   {VFIO_TYPE1v2_IOMMU, "TYPE1v2"},
      {VFIO_DMA_CC_IOMMU, "DMA_CC"}, {VFIO_NOIOMMU_IOMMU, "NOIOMMU"},
      {VFIO_UNMAP_ALL, "UNMAP_ALL"}, {VFIO_UPDATE_VADDR, "UPDATE_VADDR"},
  };
  bool v1 = false, v2 = false;
  for (const auto& [ext, ext_name] : kExtensions) {
    DP_ASSIGN_OR_RETURN(bool has, api->CheckExtension(container->fd(), ext));
    if (!has) continue;
    container->extensions_.push_back(ext_name);
    v1 |= ext == VFIO_TYPE1_IOMMU;
    v2 |= ext == VFIO_TYPE1v2_IOMMU;
  }
  // v2 is preferred: it unmaps exactly what was mapped and reports IOVA
  // ranges; plain type1 is the fallback for old kernels.
  if (v2) {
    container->iommu_type_ = VFIO_TYPE1v2_IOMMU;
  } else if (v1) {
    container->iommu_type_ = VFIO_TYPE1_IOMMU;
  } else {
    return MakeError(
        ErrorCode::kUnsupported,
        "the VFIO container offers no type1 IOMMU: load the "
        "vfio_iommu_type1 module (`modprobe vfio_iommu_type1`) and make "
        "sure the IOMMU is on (`devpass check`)");
  }
  return container;
}

Container::~Container() {
  // Groups and mappings hold the container, so none is left at this point;
  // fd_ closes last.
}

std::string Container::name() const {
  return iommu_type_ == VFIO_TYPE1v2_IOMMU ? "vfio-type1v2" : "vfio-type1";
}

Result<std::shared_ptr<Group>> Container::AttachGroup(int number) {
  auto it = groups_.find(number);
  if (it != groups_.end()) {
    if (auto group = it->second.lock()) return group;
  }
  DP_ASSIGN_OR_RETURN(auto group, OpenGroup(number));
  groups_[number] = group;
  return group;
}

Result<std::shared_ptr<Group>> Container::OpenGroup(int number) {
  auto path = root_.Dev(fmt::format("vfio/{}", number));
  auto fd = api_->Open(path);
  if (!fd) {
    const Error& e = fd.error();
    switch (e.sys_errno) {
      case ENOENT:
        return Explain(
            e, ErrorCode::kNotFound,
            fmt::format(
                "{} does not exist: no device of IOMMU group {} is bound "
                "to vfio-pci yet; run `devpass hide <bdf>` for the device",
                root_.Display(path), number));
      case EACCES:
      case EPERM:
        return Explain(
            e, ErrorCode::kPermissionDenied,
            fmt::format(
                "cannot open {}: permission denied; run as root or chown "
                "the group node to your user (`chown $USER {}`)",
                root_.Display(path), root_.Display(path)));
      case EBUSY:
        return Explain(
            e, ErrorCode::kBusy,
            fmt::format(
                "{} is already open in another process (a VM or another "
                "devpass); a VFIO group can be open only once",
                root_.Display(path)));
      default:
        return Explain(e, e.code,
                       fmt::format("cannot open {}", root_.Display(path)));
    }
  }
  VfioFd group_fd(api_, *fd);

  DP_ASSIGN_OR_RETURN(uint32_t status, api_->GetGroupStatus(group_fd.get()));
  if (!(status & VFIO_GROUP_FLAGS_VIABLE)) {
    std::string who;
    // Name the members that block, from sysfs (any member finds the group).
    std::vector<host::GroupMember> blocking;
    for (const auto& name : ListDir(root_.Sys(
             fmt::format("kernel/iommu_groups/{}/devices", number)))) {
      auto addr = PciAddress::Parse(name);
      if (!addr) continue;
      auto g = host::ReadIommuGroup(root_, *addr);
      if (g && *g) blocking = host::BlockingMembers(**g, {});
      break;
    }
    if (!blocking.empty())
      who =
          fmt::format(": {} {} used by host drivers", DescribeMembers(blocking),
                      blocking.size() == 1 ? "is" : "are");
    return MakeError(
        ErrorCode::kConflict,
        fmt::format(
            "IOMMU group {} is not viable{}. Every device of a group must "
            "be given to VFIO together: hide the other members with "
            "`devpass hide <bdf>` (or unbind them), or move the device to "
            "a slot with its own group",
            number, who));
  }

  if (auto set = api_->SetContainer(group_fd.get(), fd_.get()); !set) {
    const Error& e = set.error();
    return Explain(
        e, e.code,
        fmt::format(
            "cannot add IOMMU group {} to the VFIO container (the IOMMU "
            "cannot share one address space between it and the groups "
            "already attached); open its devices in a separate container",
            number));
  }
  auto group = std::shared_ptr<Group>(
      new Group(shared_from_this(), std::move(group_fd), number,
                ReadReservedRegions(root_, number)));
  if (!iommu_set_) {
    // SET_IOMMU needs a group in the container and is done once: later
    // groups join the IOMMU context it created.
    if (auto set = api_->SetIommu(fd_.get(), iommu_type_); !set) {
      const Error& e = set.error();
      if (e.sys_errno == EPERM) {
        return Explain(
            e, ErrorCode::kUnsafe,
            "the IOMMU has no interrupt remapping, so VFIO refuses to set it "
            "up "
            "(a device could forge interrupts). Enable interrupt remapping "
            "(intremap in firmware/kernel, x2APIC), or load vfio_iommu_type1 "
            "with "
            "allow_unsafe_interrupts=1 at your own risk");
      }
      return Explain(e, e.code,
                     fmt::format("VFIO_SET_IOMMU ({}) failed for group {}",
                                 name(), number));
    }
    iommu_set_ = true;
  }
  DP_ASSIGN_OR_RETURN(info_, api_->GetIommuInfo(fd_.get()));
  return group;
}

void Container::OnGroupClosed(int number) {
  groups_.erase(number);
  if (groups_.empty() && iommu_set_) {
    // The kernel releases the IOMMU with the last group, and every mapping
    // with it; the next group must SET_IOMMU again.
    iommu_set_ = false;
    mapped_.clear();
    ++epoch_;
  }
}

Result<Device> Container::OpenDevice(const PciAddress& address) {
  DP_ASSIGN_OR_RETURN(int number, CheckDeviceIsHidden(root_, address));
  DP_ASSIGN_OR_RETURN(auto group, AttachGroup(number));
  const std::string bdf = address.ToString();
  auto fd = api_->GetDeviceFd(group->fd(), bdf);
  if (!fd) {
    const Error& e = fd.error();
    if (e.sys_errno == EBUSY) {
      return Explain(
          e, ErrorCode::kBusy,
          fmt::format(
              "{} is already open through VFIO (by this process or another "
              "one sharing group {})",
              bdf, number));
    }
    return Explain(
        e, e.code,
        fmt::format("VFIO refused to open {} in group {} (is it still bound to "
                    "vfio-pci? `devpass status`)",
                    bdf, number));
  }
  return Device::Create(api_, std::move(group), VfioFd(api_, *fd), address);
}

std::vector<ReservedRegion> Container::reserved_regions() const {
  std::vector<ReservedRegion> out;
  for (const auto& [number, weak] : groups_) {
    if (auto g = weak.lock()) {
      out.insert(out.end(), g->reserved_regions().begin(),
                 g->reserved_regions().end());
    }
  }
  return out;
}

uint64_t Container::mapped_bytes() const {
  uint64_t total = 0;
  for (const auto& [iova, size] : mapped_) total += size;
  return total;
}

Status Container::CheckRange(const DmaMapArgs& a) const {
  if (!iommu_set_) {
    return MakeError(
        ErrorCode::kConflict,
        "no device is attached to the container yet: open a device before "
        "mapping DMA (the IOMMU is set up with the first group)");
  }
  if (a.size == 0 || a.iova + a.size < a.iova) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("DMA mapping of {} bytes at IOVA 0x{:x} is empty or wraps",
                    a.size, a.iova));
  }
  const uint64_t last = a.iova + a.size - 1;
  // The smallest IOMMU page is the mapping granule.
  uint64_t page =
      info_.iova_pgsizes ? (info_.iova_pgsizes & -info_.iova_pgsizes) : 4096;
  if (a.iova % page || a.size % page || a.vaddr % page) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        fmt::format("DMA mapping IOVA 0x{:x}, size 0x{:x}, address 0x{:x} must "
                    "all be multiples of the IOMMU page size 0x{:x}",
                    a.iova, a.size, a.vaddr, page));
  }
  // Reserved regions first: they name the reason (e.g. the MSI window),
  // while the IOVA ranges the kernel reports merely leave them out.
  for (const auto& r : reserved_regions()) {
    if (a.iova <= r.end && last >= r.start) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format("IOVA range 0x{:x}-0x{:x} overlaps the group's reserved "
                      "region 0x{:x}-0x{:x} ({}); DMA there would not reach "
                      "memory (for guest RAM, leave a hole at these addresses)",
                      a.iova, last, r.start, r.end, r.type));
    }
  }
  if (!info_.iova_ranges.empty()) {
    bool inside = std::any_of(
        info_.iova_ranges.begin(), info_.iova_ranges.end(),
        [&](const IovaRange& r) { return a.iova >= r.start && last <= r.end; });
    if (!inside) {
      std::string ranges;
      for (const auto& r : info_.iova_ranges) {
        ranges += fmt::format("{}0x{:x}-0x{:x}", ranges.empty() ? "" : ", ",
                              r.start, r.end);
      }
      return MakeError(
          ErrorCode::kInvalidArgument,
          fmt::format(
              "IOVA range 0x{:x}-0x{:x} is outside the ranges the IOMMU "
              "can translate ({}); choose IOVAs inside them",
              a.iova, last, ranges));
    }
  }
  return Ok();
}

Error Container::ExplainMapError(const Error& e, const DmaMapArgs& a) {
  const uint64_t last = a.iova + a.size - 1;
  switch (e.sys_errno) {
    case ENOMEM:
    case EDQUOT: {
      // Type1 answers both "too many mappings" and "over RLIMIT_MEMLOCK" with
      // ENOMEM; DMA_AVAIL (dma_entry_limit) tells them apart.
      auto info = api_->GetIommuInfo(fd_.get());
      if (info && info->dma_avail && *info->dma_avail == 0) {
        return Error{
            ErrorCode::kBusy, e.sys_errno,
            "the IOMMU has no DMA mapping entries left (vfio_iommu_type1 "
            "dma_entry_limit); use fewer, larger mappings or raise the module "
            "parameter"};
      }
      uint64_t need = mapped_bytes() + a.size;
      uint64_t limit = api_->MemlockLimit();
      return Error{
          ErrorCode::kPermissionDenied, e.sys_errno,
          fmt::format(
              "cannot pin memory for DMA: needs {} MiB locked, limit is {} "
              "MiB; raise with `ulimit -l` (or LimitMEMLOCK= in the systemd "
              "unit, memlock in /etc/security/limits.conf)",
              CeilMiB(need),
              limit == UINT64_MAX ? std::string("unlimited")
                                  : std::to_string(limit / kMiB))};
    }
    case EEXIST:
      return Error{
          ErrorCode::kConflict, e.sys_errno,
          fmt::format(
              "IOVA range 0x{:x}-0x{:x} overlaps an existing DMA mapping",
              a.iova, last)};
    case EFAULT:
      return Error{
          ErrorCode::kInvalidArgument, e.sys_errno,
          fmt::format("the memory at 0x{:x} ({} bytes) to map for DMA is not "
                      "mapped in this process",
                      a.vaddr, a.size)};
    default:
      return Error{
          e.code, e.sys_errno,
          fmt::format("VFIO_IOMMU_MAP_DMA of IOVA 0x{:x}-0x{:x} failed", a.iova,
                      last)};
  }
}

Status Container::MapDma(const DmaMapArgs& args) {
  DP_RETURN_IF_ERROR(CheckRange(args));
  if (auto r = api_->MapDma(fd_.get(), args); !r) {
    return tl::unexpected(ExplainMapError(r.error(), args));
  }
  mapped_[args.iova] = args.size;
  return Ok();
}

Status Container::UnmapDma(uint64_t iova, uint64_t size) {
  auto r = api_->UnmapDma(fd_.get(), iova, size);
  if (!r) {
    const Error& e = r.error();
    return Explain(
        e, e.code,
        fmt::format("VFIO_IOMMU_UNMAP_DMA of IOVA 0x{:x} (+0x{:x}) failed",
                    iova, size));
  }
  mapped_.erase(iova);
  return Ok();
}

Result<VfioSession> OpenVfioDevice(std::shared_ptr<VfioApi> api,
                                   const Root& root,
                                   const PciAddress& address) {
  DP_RETURN_IF_ERROR(CheckDeviceIsHidden(root, address));
  DP_ASSIGN_OR_RETURN(auto container, Container::Open(std::move(api), root));
  DP_ASSIGN_OR_RETURN(auto device, container->OpenDevice(address));
  return VfioSession{std::move(container), std::move(device)};
}

}  // namespace devpass::vfio
