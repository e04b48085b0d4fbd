#include <iostream>

#include "cli/commands.h"
#include "cli/list_view.h"
#include "cli/output.h"

namespace devpass::cli {

void RegisterListCommand(CLI::App& app, Globals& g) {
  auto* cmd = app.add_subcommand(
      "list",
      "List PCI devices with their driver, IOMMU group and whether they can be "
      "assigned to a guest");
  struct Args {
    std::string class_text;
    int group = -1;
    bool assignable = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--class", args->class_text,
                  "Only devices of this class: a hex prefix of the class code "
                  "(02, 0200, "
                  "0x0200) or a name: " +
                      ClassFilterHelp())
      ->type_name("CLASS");
  cmd->add_option("--group", args->group, "Only devices in IOMMU group N")
      ->type_name("N");
  cmd->add_flag("--assignable", args->assignable,
                "Only devices that can be assigned now");
  cmd->add_flag("--json", g.json, "Print machine-readable JSON");
  cmd->callback([&g, args] {
    ListOptions options;
    if (!args->class_text.empty()) {
      auto filter = ParseClassFilter(args->class_text);
      if (!filter) {
        g.exit_code = ReportError(filter.error(), g.json);
        return;
      }
      options.class_filter = *filter;
    }
    if (args->group >= 0) options.group = args->group;
    options.assignable_only = args->assignable;
    auto listing = BuildListing(g.root(), options);
    if (!listing) {
      g.exit_code = ReportError(listing.error(), g.json);
      return;
    }
    for (const auto& w : listing->warnings) Warn(w);
    if (g.json) {
      std::cout << ListJsonText(*listing) << "\n";
    } else {
      std::cout << ListText(*listing);
    }
    g.exit_code = kExitOk;
  });
}

}  // namespace devpass::cli
