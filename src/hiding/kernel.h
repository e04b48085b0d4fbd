#pragma once

// The seam between devpass and the kernel. Every *write* that changes a
// device's binding (driver_override, bind, unbind, drivers_probe, pciback
// slots) and every module load goes through Kernel, so that unit tests can
// substitute a simulation with the kernel's binding rules and inject faults.
// Reads go straight to the (real or fake) tree under Root.

#include <filesystem>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/root.h"

namespace devpass::hiding {

class Kernel {
 public:
  virtual ~Kernel() = default;
  // One write(2) of `value` to a sysfs attribute.
  virtual Status WriteSysfs(const std::filesystem::path& path,
                            std::string_view value) = 0;
  // Loads a kernel module ("vfio-pci") with its dependencies.
  virtual Status LoadModule(std::string_view module) = 0;
};

// The running kernel: sysfs writes are plain file writes; modules are loaded
// by running `modprobe <module>` (fork/exec, no shell). Modules can only be
// loaded into the running kernel, so for a root other than "/" LoadModule
// fails.
class RealKernel : public Kernel {
 public:
  explicit RealKernel(Root root) : root_(std::move(root)) {}
  Status WriteSysfs(const std::filesystem::path& path,
                    std::string_view value) override;
  Status LoadModule(std::string_view module) override;

 private:
  Root root_;
};

// The drivers that hold a device for a guest without using it.
struct StubDriver {
  std::string_view name;    // as the user names it: "xen-pciback"
  std::string_view driver;  // sys/bus/pci/drivers/<driver>: "pciback"
  std::string_view module;  // for modprobe: "xen-pciback"
  bool xen_slots = false;   // needs pciback's new_slot/remove_slot
  bool vfio = false;        // creates /dev/vfio/<group>
};

inline constexpr StubDriver kVfioPci{"vfio-pci", "vfio-pci", "vfio-pci", false,
                                     true};
inline constexpr StubDriver kPciStub{"pci-stub", "pci-stub", "pci-stub", false,
                                     false};
inline constexpr StubDriver kXenPciback{"xen-pciback", "pciback", "xen-pciback",
                                        true, false};

// By user name or driver name ("xen-pciback" or "pciback"); kInvalidArgument
// naming the choices otherwise.
Result<StubDriver> FindStub(std::string_view name);

}  // namespace devpass::hiding
