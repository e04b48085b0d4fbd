#include "hiding/binder.h"

#include <cstring>
#include <thread>

#include "base/fs.h"

namespace devpass::hiding {
namespace fs = std::filesystem;
namespace {

// What to do about a refused sysfs write, by errno.
std::string Advice(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
      return "run devpass as root";
    case EBUSY:
      return "the device or driver is busy: stop whatever uses it and try "
             "again";
    case ENODEV:
      return "the driver refused the device; see 'dmesg' for the kernel's "
             "reason";
    case ENOENT:
      return "the driver or device disappeared; check 'devpass list'";
    default:
      return "see 'dmesg' for the kernel's reason";
  }
}

Error StepError(std::string_view op, const PciAddress& a, std::string_view step,
                const Error& cause, std::string_view rollback) {
  std::string msg =
      fmt::format("{} {}: step {} failed: {}", op, a, step, cause.message);
  if (cause.sys_errno != 0) {
    msg += fmt::format(" (errno {}: {})", cause.sys_errno,
                       std::strerror(cause.sys_errno));
  }
  if (!rollback.empty()) msg += fmt::format("; {}", rollback);
  if (cause.sys_errno != 0) msg += fmt::format("; {}", Advice(cause.sys_errno));
  // sys_errno stays for JSON; message already spells it out, so ToString
  // would repeat it: keep the errno only in the code.
  return Error{cause.code, 0, std::move(msg)};
}

}  // namespace

std::string DescribeReturn(const std::string& final_driver,
                           const std::string& original_driver) {
  if (final_driver.empty()) {
    return original_driver.empty()
               ? "the device is unbound, as it was before"
               : fmt::format("the device is unbound ({} did not take it back)",
                             original_driver);
  }
  if (final_driver == original_driver) {
    return fmt::format("the device is on {} again", final_driver);
  }
  return fmt::format("the device is on {} (it was on {})", final_driver,
                     original_driver.empty() ? "no driver" : original_driver);
}

Binder::Binder(const Root& root, Kernel& kernel,
               std::chrono::milliseconds vfio_wait)
    : root_(root), kernel_(kernel), vfio_wait_(vfio_wait) {}

fs::path Binder::DeviceDir(const PciAddress& a) const {
  return root_.Sys("bus/pci/devices") / a.ToString();
}

bool Binder::DeviceExists(const PciAddress& a) const {
  return Exists(DeviceDir(a));
}

std::string Binder::CurrentDriver(const PciAddress& a) const {
  return ReadLinkName(DeviceDir(a) / "driver").value_or("");
}

std::string Binder::Override(const PciAddress& a) const {
  std::string v = ReadTrimmed(DeviceDir(a) / "driver_override").value_or("");
  return v == "(null)" ? "" : v;
}

std::string Binder::Ids(const PciAddress& a) const {
  auto v = ReadInt(DeviceDir(a) / "vendor");
  auto d = ReadInt(DeviceDir(a) / "device");
  if (!v || !d) return "";
  return fmt::format("{:04x}:{:04x}", *v, *d);
}

std::optional<int> Binder::IommuGroupId(const PciAddress& a) const {
  auto name = ReadLinkName(DeviceDir(a) / "iommu_group");
  if (!name) return std::nullopt;
  try {
    return std::stoi(*name);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Status Binder::Write(const fs::path& path, std::string_view value) {
  return kernel_.WriteSysfs(path, value);
}

bool Binder::InSlots(const PciAddress& a) const {
  auto text = ReadFile(root_.Sys("bus/pci/drivers/pciback/slots"));
  if (!text) return false;
  for (const auto& w : SplitWords(*text)) {
    // Lines are "DDDD:BB:DD.F", possibly followed by flags after a comma.
    auto parsed = PciAddress::Parse(w.substr(0, w.find(',')));
    if (parsed && *parsed == a) return true;
  }
  return false;
}

Status Binder::EnsureStubLoaded(const StubDriver& stub) {
  auto dir = root_.Sys("bus/pci/drivers") / std::string(stub.driver);
  if (Exists(dir)) return Ok();
  // xen-pciback only loads in a Xen dom0; say so instead of relaying
  // modprobe's generic failure.
  if (stub.module == "xen-pciback" &&
      ReadTrimmed(root_.Sys("hypervisor/type")).value_or("") != "xen") {
    return MakeError(
        ErrorCode::kUnsupported,
        fmt::format("xen-pciback works only in a Xen dom0, and this host is "
                    "not running under Xen ({} is not 'xen'); on KVM use "
                    "--driver vfio-pci",
                    root_.Display(root_.Sys("hypervisor/type"))));
  }
  DP_RETURN_IF_ERROR(kernel_.LoadModule(stub.module));
  if (Exists(dir)) return Ok();
  return MakeError(
      ErrorCode::kUnsupported,
      fmt::format("module {} was loaded but {} did not appear; is this "
                  "kernel built with {}? (check 'dmesg')",
                  stub.module, root_.Display(dir), stub.name));
}

Status Binder::Rebind(const PciAddress& a, const std::string& driver) {
  auto bind = root_.Sys("bus/pci/drivers") / driver / "bind";
  Status s = Exists(bind) ? Write(bind, a.ToString())
                          : MakeError(ErrorCode::kNotFound,
                                      root_.Display(bind) + " does not exist");
  if (s && CurrentDriver(a) == driver) return Ok();
  // The driver may be gone (module unloaded) or refuse an explicit bind:
  // let the kernel pick, as at boot.
  if (CurrentDriver(a).empty()) {
    DP_RETURN_IF_ERROR(Write(root_.Sys("bus/pci/drivers_probe"), a.ToString()));
  }
  return s;
}

Result<std::string> Binder::RollBack(const PciAddress& a,
                                     const StubDriver& stub,
                                     const std::string& original) {
  std::optional<Error> first;
  auto note = [&](Status s) {
    if (!s && !first) first = s.error();
  };
  if (!Override(a).empty()) note(Write(DeviceDir(a) / "driver_override", "\n"));
  if (CurrentDriver(a) == stub.driver && stub.driver != original) {
    note(Write(
        root_.Sys("bus/pci/drivers") / std::string(stub.driver) / "unbind",
        a.ToString()));
  }
  if (stub.xen_slots && InSlots(a)) {
    note(Write(root_.Sys("bus/pci/drivers/pciback/remove_slot"), a.ToString()));
  }
  if (!original.empty() && CurrentDriver(a).empty()) note(Rebind(a, original));
  if (first) return tl::unexpected(*first);
  return CurrentDriver(a);
}

Result<BindOutcome> Binder::BindToStub(const PciAddress& a,
                                       const StubDriver& stub,
                                       const std::string& original,
                                       const StepHook& hook) {
  // Rolls back, then describes the failure and where the device ended up.
  auto fail = [&](std::string_view step,
                  const Error& cause) -> Result<BindOutcome> {
    auto back = RollBack(a, stub, original);
    std::string where = back ? "rolled back: " + DescribeReturn(*back, original)
                             : "rolling back failed too (" +
                                   back.error().ToString() +
                                   "); check the device with 'devpass status'";
    return tl::unexpected(StepError("hide", a, step, cause, where));
  };
  auto run = [&](std::string_view step, Status s) -> std::optional<Error> {
    if (!s) return s.error();
    if (Status h = hook(step); !h) return h.error();
    return std::nullopt;
  };

  if (Status s = EnsureStubLoaded(stub); !s) {
    return tl::unexpected(
        StepError("hide", a, "module", s.error(), "nothing was changed"));
  }
  if (auto e = run("override", Write(DeviceDir(a) / "driver_override",
                                     std::string(stub.driver) + "\n"))) {
    return fail("override", *e);
  }
  std::string current = CurrentDriver(a);
  Status unbound = Ok();
  if (!current.empty() && current != stub.driver) {
    unbound =
        Write(root_.Sys("bus/pci/drivers") / current / "unbind", a.ToString());
  }
  if (auto e = run("unbind", unbound)) return fail("unbind", *e);
  if (stub.xen_slots && !InSlots(a)) {
    // pciback only probes devices in its slot list; writing twice would
    // add the slot twice.
    if (Status s =
            Write(root_.Sys("bus/pci/drivers/pciback/new_slot"), a.ToString());
        !s) {
      return fail("new_slot", s.error());
    }
  }
  Status probed = Ok();
  if (CurrentDriver(a).empty()) {
    probed = Write(root_.Sys("bus/pci/drivers_probe"), a.ToString());
  }
  if (auto e = run("probe", probed)) return fail("probe", *e);
  if (CurrentDriver(a) != stub.driver) {
    // drivers_probe does not promise a bind; ask the stub directly, once.
    Status s =
        Write(root_.Sys("bus/pci/drivers") / std::string(stub.driver) / "bind",
              a.ToString());
    if (!s) return fail("verify", s.error());
  }
  BindOutcome out;
  out.driver = CurrentDriver(a);
  if (out.driver != stub.driver) {
    return fail(
        "verify",
        Error{ErrorCode::kKernelRejected, 0,
              fmt::format("the device is on '{}' instead of {} after binding",
                          out.driver.empty() ? "no driver" : out.driver,
                          stub.driver)});
  }
  if (stub.vfio) {
    if (auto group = IommuGroupId(a)) {
      auto node = root_.Dev("vfio") / std::to_string(*group);
      auto deadline = std::chrono::steady_clock::now() + vfio_wait_;
      while (!Exists(node) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (Exists(node)) {
        out.vfio_node = fmt::format("/dev/vfio/{}", *group);
      } else {
        out.warnings.push_back(fmt::format(
            "{} is on vfio-pci but {} did not appear within {} ms; check that "
            "udev or devtmpfs creates VFIO nodes",
            a, root_.Display(node), vfio_wait_.count()));
      }
    }
  }
  if (Status h = hook("verify"); !h) return fail("verify", h.error());
  return out;
}

Result<BindOutcome> Binder::ReleaseFromStub(const PciAddress& a,
                                            const StubDriver& stub,
                                            const std::string& original,
                                            const StepHook& hook) {
  if (CurrentDriver(a) == stub.driver) {
    Status s = Write(
        root_.Sys("bus/pci/drivers") / std::string(stub.driver) / "unbind",
        a.ToString());
    if (!s) {
      return tl::unexpected(
          StepError("unhide", a, "unbind", s.error(),
                    "nothing was changed, the device is still hidden"));
    }
  }
  DP_RETURN_IF_ERROR(hook("unbind"));
  if (!Override(a).empty()) {
    Status s = Write(DeviceDir(a) / "driver_override", "\n");
    if (!s) {
      // Put the device back on its stub (the override still names it) so it
      // stays hidden rather than half released.
      (void)Write(root_.Sys("bus/pci/drivers_probe"), a.ToString());
      return tl::unexpected(
          StepError("unhide", a, "override-clear", s.error(),
                    fmt::format("the device is on '{}'", CurrentDriver(a))));
    }
  }
  DP_RETURN_IF_ERROR(hook("override-clear"));
  BindOutcome out;
  if (stub.xen_slots && InSlots(a)) {
    if (Status s = Write(root_.Sys("bus/pci/drivers/pciback/remove_slot"),
                         a.ToString());
        !s) {
      out.warnings.push_back("cannot remove the pciback slot: " +
                             s.error().ToString());
    }
  }
  if (!original.empty() && CurrentDriver(a).empty()) {
    if (Status s = Rebind(a, original); !s) {
      out.warnings.push_back(
          fmt::format("binding {} failed: {}", original, s.error().ToString()));
    }
  }
  DP_RETURN_IF_ERROR(hook("rebind"));
  out.driver = CurrentDriver(a);
  if (out.driver != original) {
    out.warnings.push_back(
        fmt::format("{}: {}", a, DescribeReturn(out.driver, original)));
  }
  return out;
}

}  // namespace devpass::hiding
