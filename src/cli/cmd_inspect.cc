// devpass inspect BDF: opens a hidden device through VFIO (container, group,
// device) and shows what the abstract device offers a guest: regions, IRQs,
// reset, the IOMMU's IOVA ranges and page sizes, reserved regions, and where
// the MSI-X table and PBA sit. The work is in vfio/inspect.h.

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/output.h"
#include "vfio/container.h"
#include "vfio/inspect.h"

namespace devpass::cli {

void RegisterInspectCommand(CLI::App& app, Globals& g) {
  auto bdf = std::make_shared<std::string>();
  CLI::App* inspect = app.add_subcommand(
      "inspect",
      "Open a hidden device through VFIO and show its regions, interrupts, "
      "reset "
      "support and IOMMU view (needs root and a device bound to vfio-pci)");
  inspect->add_option("device", *bdf, "PCI address (0000:01:00.0)")->required();
  inspect->add_flag("--json", g.json, "Print machine-readable JSON");
  inspect->callback([&g, bdf] {
    auto address = PciAddress::Parse(*bdf);
    if (!address) {
      g.exit_code = ReportError(address.error(), g.json);
      return;
    }
    auto session =
        vfio::OpenVfioDevice(vfio::NewKernelVfioApi(), g.root(), *address);
    if (!session) {
      g.exit_code = ReportError(session.error(), g.json);
      return;
    }
    auto report = vfio::InspectDevice(*session->container, session->device);
    if (g.json) {
      PrintJson(report);
    } else {
      std::cout << vfio::InspectText(report);
    }
    g.exit_code = kExitOk;
  });
}

}  // namespace devpass::cli
