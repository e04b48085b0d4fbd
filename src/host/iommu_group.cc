#include "host/iommu_group.h"

#include <algorithm>

#include "base/fs.h"

namespace devpass::host {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.substr(s.size() - suffix.size()) == suffix;
}

// A bridge never blocks viability (the kernel skips it): header type 1
// (PCI-to-PCI) or 2 (CardBus) in config byte 0x0e, class 0x0604xx when the
// config space is unreadable, or bound to pcieport (root/downstream ports).
bool ReadIsBridge(const std::filesystem::path& dev, std::string_view driver) {
  if (driver == "pcieport") return true;
  if (auto cfg = ReadBytes(dev / "config", 0x10); cfg && cfg->size() > 0x0e) {
    int type = (*cfg)[0x0e] & 0x7f;
    if (type == 1 || type == 2) return true;
  }
  if (auto cls = ReadInt(dev / "class");
      cls && ((*cls >> 8) & 0xffff) == 0x0604) {
    return true;
  }
  return false;
}

}  // namespace

std::string_view BridgeKind(uint32_t class_code) {
  if ((class_code >> 16) != 0x06) return "";
  switch ((class_code >> 8) & 0xff) {
    case 0x00:
      return "host bridge";
    case 0x01:
      return "ISA bridge";
    case 0x02:
      return "EISA bridge";
    case 0x03:
      return "MicroChannel bridge";
    case 0x04:
      return "PCI bridge";
    case 0x05:
      return "PCMCIA bridge";
    case 0x06:
      return "NuBus bridge";
    case 0x07:
      return "CardBus bridge";
    case 0x08:
      return "RACEway bridge";
    case 0x09:
      return "PCI bridge";
    case 0x0a:
      return "InfiniBand-to-PCI bridge";
    default:
      return "bridge";
  }
}

bool IsStubDriver(std::string_view driver) {
  return driver == "vfio-pci" || driver == "pci-stub" || driver == "pciback" ||
         EndsWith(driver, "vfio_pci") || EndsWith(driver, "vfio-pci");
}

Result<bool> IsBridge(const Root& root, const PciAddress& address) {
  auto dev = root.Sys("bus/pci/devices") / address.ToString();
  if (!Exists(dev)) {
    return MakeError(
        ErrorCode::kNotFound,
        fmt::format("there is no PCI device {} ({} does not exist); "
                    "check the address with 'devpass list'",
                    address, root.Display(dev)));
  }
  return ReadIsBridge(dev, ReadLinkName(dev / "driver").value_or(""));
}

Result<std::optional<IommuGroup>> ReadIommuGroup(const Root& root,
                                                 const PciAddress& address) {
  auto dev = root.Sys("bus/pci/devices") / address.ToString();
  if (!Exists(dev)) {
    return MakeError(
        ErrorCode::kNotFound,
        fmt::format("there is no PCI device {} ({} does not exist); "
                    "check the address with 'devpass list'",
                    address, root.Display(dev)));
  }
  auto group_name = ReadLinkName(dev / "iommu_group");
  if (!group_name) return std::optional<IommuGroup>();

  IommuGroup group;
  try {
    group.id = std::stoi(*group_name);
  } catch (const std::exception&) {
    return MakeError(
        ErrorCode::kIo,
        fmt::format("{} points at '{}', which is not an IOMMU group "
                    "number",
                    root.Display(dev / "iommu_group"), *group_name));
  }
  auto members_dir = root.Sys("kernel/iommu_groups") / *group_name / "devices";
  for (const auto& name : ListDir(members_dir)) {
    auto addr = PciAddress::Parse(name);
    if (!addr) continue;  // not a PCI device (never on x86, but be lenient)
    GroupMember m;
    m.address = *addr;
    auto member_dir = members_dir / name;
    m.driver = ReadLinkName(member_dir / "driver").value_or("");
    m.is_bridge = ReadIsBridge(member_dir, m.driver);
    m.in_host_use =
        !m.driver.empty() && !m.is_bridge && !IsStubDriver(m.driver);
    group.members.push_back(std::move(m));
  }
  std::sort(group.members.begin(), group.members.end(),
            [](const GroupMember& a, const GroupMember& b) {
              return a.address < b.address;
            });
  return std::optional<IommuGroup>(std::move(group));
}

std::vector<GroupMember> BlockingMembers(
    const IommuGroup& group, const std::vector<PciAddress>& excluding) {
  std::vector<GroupMember> out;
  for (const auto& m : group.members) {
    if (!m.in_host_use) continue;
    if (std::find(excluding.begin(), excluding.end(), m.address) !=
        excluding.end()) {
      continue;
    }
    out.push_back(m);
  }
  return out;
}

}  // namespace devpass::host
