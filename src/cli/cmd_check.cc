#include <iostream>

#include "cli/check_view.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace devpass::cli {

void RegisterCheckCommand(CLI::App& app, Globals& g) {
  auto* cmd = app.add_subcommand(
      "check",
      "Check that this host can assign devices to guests (CPU virtualization, "
      "KVM, IOMMU, VFIO, interrupt remapping) and say how to fix what is "
      "missing");
  cmd->add_flag("--json", g.json, "Print machine-readable JSON");
  cmd->footer("Exit status: 0 when nothing FAILs, 3 when a check FAILs.");
  cmd->callback([&g] {
    auto findings = host::CheckHost(g.root());
    if (g.json) {
      PrintJson(CheckJson(findings));
    } else {
      std::cout << CheckText(findings);
    }
    g.exit_code = host::AnyFailed(findings) ? kExitCheckFailed : kExitOk;
  });
}

}  // namespace devpass::cli
