// devpass: direct device assignment (PCI passthrough) on Linux KVM + VFIO.

#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/output.h"

int main(int argc, char** argv) {
  using namespace devpass::cli;
  Globals g;
  CLI::App app{
      "devpass: give a physical PCI device to a KVM guest.\n"
      "Module 1 (device hiding): list, show, check, hide, unhide, status."};
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
  app.parse_complete_callback([&] { RepairInterruptedOperations(g); });

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
