#include "kernel_sim.h"

#include <fstream>
#include <sstream>

#include "base/fs.h"

namespace devpass::testing {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> Split(const std::string& rel) {
  std::vector<std::string> parts;
  for (const auto& p : fs::path(rel)) parts.push_back(p.string());
  return parts;
}

void Put(const fs::path& p, std::string_view content) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::trunc);
  out << content;
}

}  // namespace

void KernelSim::FailWrite(const std::string& rel, int err,
                          const std::string& only_value) {
  faults_[rel] = Fault{err, only_value};
}

std::optional<std::string> KernelSim::GroupOf(const std::string& bdf) const {
  return ReadLinkName(
      host_.Path("sys/bus/pci/devices/" + bdf + "/iommu_group"));
}

bool KernelSim::Matches(const std::string& driver,
                        const std::string& bdf) const {
  auto dev = host_.Path("sys/bus/pci/devices/" + bdf);
  auto v = ReadInt(dev / "vendor");
  auto d = ReadInt(dev / "device");
  auto table =
      ReadFile(host_.Path("sys/bus/pci/drivers/" + driver + "/.fake_ids"));
  if (!v || !d || !table) return false;
  std::istringstream in(*table);
  unsigned tv = 0, td = 0;
  while (in >> std::hex >> tv >> td) {
    if (tv == *v && (td == 0xffff || td == *d)) return true;
  }
  return false;
}

Status KernelSim::Bind(const std::string& driver, const std::string& bdf) {
  auto dev = host_.Path("sys/bus/pci/devices/" + bdf);
  if (!Exists(dev)) return ErrnoError(ENODEV, "no such device " + bdf);
  if (!Exists(host_.Path("sys/bus/pci/drivers/" + driver))) {
    return ErrnoError(ENODEV, "no driver " + driver);
  }
  if (Exists(dev / "driver")) return ErrnoError(EBUSY, bdf + " is bound");
  std::string ovr = OverrideOf(host_, bdf);
  if (ovr != "(null)" && ovr != driver) {
    return ErrnoError(ENODEV, bdf + ": driver_override names " + ovr);
  }
  if (ovr == "(null)" && !Matches(driver, bdf)) {
    return ErrnoError(ENODEV, driver + " does not match " + bdf);
  }
  if (driver == "pciback") {
    auto slots =
        ReadFile(host_.Path("sys/bus/pci/drivers/pciback/slots")).value_or("");
    if (slots.find(bdf) == std::string::npos) {
      return ErrnoError(ENODEV, bdf + " is not in pciback's slots");
    }
  }
  std::optional<std::string> group = GroupOf(bdf);
  if (driver == "vfio-pci") {
    if (!group)
      return ErrnoError(EINVAL, "vfio-pci: no iommu_group for " + bdf);
    Put(host_.Path("dev/vfio/vfio"), "");
    Put(host_.Path("dev/vfio/" + *group), "");
  }
  host_.Bind(bdf, driver);
  return Ok();
}

Status KernelSim::Unbind(const std::string& driver, const std::string& bdf) {
  if (DriverOf(host_, bdf) != driver) {
    return ErrnoError(ENODEV, bdf + " is not bound to " + driver);
  }
  host_.Unbind(bdf);
  if (auto group = GroupOf(bdf); group && driver == "vfio-pci") {
    bool any = false;
    for (const auto& m : ListDir(
             host_.Path("sys/kernel/iommu_groups/" + *group + "/devices"))) {
      if (DriverOf(host_, m) == "vfio-pci") any = true;
    }
    if (!any) std::filesystem::remove(host_.Path("dev/vfio/" + *group));
  }
  return Ok();
}

Status KernelSim::Probe(const std::string& bdf) {
  auto dev = host_.Path("sys/bus/pci/devices/" + bdf);
  if (!Exists(dev)) return ErrnoError(ENODEV, "no such device " + bdf);
  if (Exists(dev / "driver") || probe_binds_nothing_) return Ok();
  std::string ovr = OverrideOf(host_, bdf);
  if (ovr != "(null)") {
    // Only the named driver may take it; if it is not loaded, nothing does.
    if (Exists(host_.Path("sys/bus/pci/drivers/" + ovr))) (void)Bind(ovr, bdf);
    return Ok();
  }
  for (const auto& drv : ListDir(host_.Path("sys/bus/pci/drivers"))) {
    if (Matches(drv, bdf) && Bind(drv, bdf)) return Ok();
  }
  return Ok();
}

Status KernelSim::WriteSysfs(const fs::path& path, std::string_view value) {
  std::string rel = path.lexically_relative(host_.dir()).string();
  std::string v = Trim(value);
  writes_.push_back(rel + "=" + v);
  if (auto it = faults_.find(rel);
      it != faults_.end() &&
      (it->second.only_value.empty() || it->second.only_value == v)) {
    return ErrnoError(it->second.err,
                      fmt::format("the kernel refused to write '{}' to {}", v,
                                  path.string()));
  }
  auto fail = [&](const Status& s) -> Status {
    if (s) return s;
    return ErrnoError(s.error().sys_errno,
                      fmt::format("the kernel refused to write '{}' to {}", v,
                                  path.string()));
  };
  auto parts = Split(rel);
  // sys/bus/pci/devices/<bdf>/driver_override
  if (parts.size() == 6 && parts[3] == "devices" &&
      parts[5] == "driver_override") {
    if (!Exists(path)) return ErrnoError(ENOENT, "no " + path.string());
    Put(path, (v.empty() ? std::string("(null)") : v) + "\n");
    return Ok();
  }
  if (rel == "sys/bus/pci/drivers_probe") return fail(Probe(v));
  // sys/bus/pci/drivers/<drv>/<attr>
  if (parts.size() == 6 && parts[3] == "drivers") {
    const std::string& drv = parts[4];
    const std::string& attr = parts[5];
    if (!Exists(path)) return ErrnoError(ENOENT, "no " + path.string());
    if (attr == "bind") return fail(Bind(drv, v));
    if (attr == "unbind") return fail(Unbind(drv, v));
    if (drv == "pciback" && (attr == "new_slot" || attr == "remove_slot")) {
      auto slots_path = host_.Path("sys/bus/pci/drivers/pciback/slots");
      std::string slots = ReadFile(slots_path).value_or("");
      if (attr == "new_slot") {
        Put(slots_path, slots + v + "\n");  // the real driver duplicates, too
        return Ok();
      }
      std::string kept;
      bool found = false;
      std::istringstream in(slots);
      for (std::string line; std::getline(in, line);) {
        if (line == v)
          found = true;
        else if (!line.empty())
          kept += line + "\n";
      }
      if (!found) return ErrnoError(ENOENT, v + " is not a pciback slot");
      Put(slots_path, kept);
      return Ok();
    }
  }
  if (!Exists(path)) return ErrnoError(ENOENT, "no " + path.string());
  Put(path, value);
  return Ok();
}

Status KernelSim::LoadModule(std::string_view module) {
  std::string m(module);
  modules_.push_back(m);
  if (failing_modules_.count(m)) {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("'modprobe {}' failed with exit status 1: modprobe: "
                    "FATAL: Module {} not found",
                    m, m));
  }
  if (m == "vfio-pci")
    host_.AddDriver("vfio-pci", {}, "vfio_pci");
  else if (m == "pci-stub")
    host_.AddDriver("pci-stub");
  else if (m == "xen-pciback")
    AddPciback(host_);
  else
    return MakeError(ErrorCode::kUnsupported,
                     "modprobe: FATAL: Module " + m + " not found");
  return Ok();
}

void AddPciback(FakeHost& host) {
  host.AddDriver("pciback", {}, "xen_pciback");
  for (const char* f :
       {"new_slot", "remove_slot", "slots", "permissive", "quirks"}) {
    host.WriteFile(std::string("sys/bus/pci/drivers/pciback/") + f, "");
  }
}

std::string DriverOf(const FakeHost& host, const std::string& bdf) {
  return ReadLinkName(host.Path("sys/bus/pci/devices/" + bdf + "/driver"))
      .value_or("");
}

std::string OverrideOf(const FakeHost& host, const std::string& bdf) {
  return ReadTrimmed(
             host.Path("sys/bus/pci/devices/" + bdf + "/driver_override"))
      .value_or("?");
}

std::string Snapshot(const FakeHost& host) {
  std::string s;
  for (const auto& bdf : ListDir(host.Path("sys/bus/pci/devices"))) {
    s += fmt::format("{} driver={} override={}\n", bdf, DriverOf(host, bdf),
                     OverrideOf(host, bdf));
  }
  for (const auto& n : ListDir(host.Path("dev/vfio"))) {
    if (n != "vfio") s += "dev/vfio/" + n + "\n";  // the container node stays
  }
  s += "slots=" +
       ReadFile(host.Path("sys/bus/pci/drivers/pciback/slots")).value_or("") +
       "\n";
  s += "ledger=" +
       ReadFile(host.Path("var/lib/devpass/ledger.json")).value_or("") + "\n";
  for (const auto& n : ListDir(host.Path("var/lib/devpass/journal")))
    s += "journal/" + n + "\n";
  for (const auto& n : ListDir(host.Path("etc/devpass/hidden")))
    s += "persist/" + n + "\n";
  if (Exists(host.Path("etc/udev/rules.d/61-devpass.rules"))) s += "rules\n";
  if (Exists(host.Path("etc/systemd/system/devpass-restore.service")))
    s += "unit\n";
  return s;
}

}  // namespace devpass::testing
