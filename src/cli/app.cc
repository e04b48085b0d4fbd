#include <exception>
#include <iostream>

#include "cli/commands.h"

namespace devpass::cli {

void ConfigureApp(CLI::App& app, Globals& g) {
  app.description(
      "devpass: give a physical PCI device to a KVM guest.\n"
      "Device hiding: list, show, check, hide, unhide, restore, status.\n"
      "Abstract device (VFIO): inspect. Guest boot: run.");
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("devpass 0.1.0"));
  app.add_option("--root", g.root_option,
                 "Resolve every host path (sys, dev, proc, etc, run, var/lib) "
                 "under DIR instead of /")
      ->envname("DEVPASS_ROOT")
      ->type_name("DIR");
  app.add_flag("--json", g.json, "Print machine-readable JSON");

  RegisterListCommand(app, g);
  RegisterShowCommand(app, g);
  RegisterCheckCommand(app, g);
  RegisterHideCommands(app, g);
  RegisterStatusCommand(app, g);
  RegisterInspectCommand(app, g);
  RegisterRunCommand(app, g);

  // Repair before any command runs, so the state every command sees is whole.
  app.parse_complete_callback([&g] { RepairInterruptedOperations(g); });
}

int RunApp(CLI::App& app, Globals& g, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "devpass: internal error: " << e.what()
              << "\nPlease report this as a bug.\n";
    return kExitError;
  }
  return g.exit_code;
}

}  // namespace devpass::cli
