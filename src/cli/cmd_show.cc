#include <iostream>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/show_view.h"

namespace devpass::cli {

void RegisterShowCommand(CLI::App& app, Globals& g) {
  auto* cmd =
      app.add_subcommand("show",
                         "Show everything about one PCI device: capabilities, "
                         "BARs, reset methods, "
                         "IOMMU group and why it can or cannot be assigned");
  auto bdf = std::make_shared<std::string>();
  cmd->add_option("BDF", *bdf, "PCI address, e.g. 0000:01:00.0 or 01:00.0")
      ->required();
  cmd->add_flag("--json", g.json, "Print machine-readable JSON");
  cmd->callback([&g, bdf] {
    auto address = PciAddress::Parse(*bdf);
    if (!address) {
      g.exit_code = ReportError(address.error(), g.json);
      return;
    }
    auto details = BuildDetails(g.root(), *address);
    if (!details) {
      g.exit_code = ReportError(details.error(), g.json);
      return;
    }
    for (const auto& w : details->warnings) Warn(w);
    if (g.json) {
      PrintJson(ShowJson(*details));
    } else {
      std::cout << ShowText(*details);
    }
    g.exit_code = kExitOk;
  });
}

}  // namespace devpass::cli
