#pragma once

// Each subcommand lives in its own cmd_*.cc and registers itself on the app.
// A command's callback stores its exit status in Globals::exit_code.

#include <CLI/CLI.hpp>
#include <string>

#include "base/root.h"

namespace devpass::cli {

// Exit statuses shared by all commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;        // the operation failed
inline constexpr int kExitUsage = 2;        // bad arguments
inline constexpr int kExitCheckFailed = 3;  // `check` found a FAIL

struct Globals {
  std::string root_option;  // --root
  bool json = false;        // --json
  int exit_code = kExitOk;

  Root root() const { return Root::FromOptionOrEnv(root_option); }
};

// The whole program: global options, every subcommand and the repair hook.
// main() and the CLI tests both build the app with it.
void ConfigureApp(CLI::App& app, Globals& g);
// Parses and runs; returns the exit status. Exceptions stop here.
int RunApp(CLI::App& app, Globals& g, int argc, char** argv);

void RegisterListCommand(CLI::App& app, Globals& g);
void RegisterShowCommand(CLI::App& app, Globals& g);
void RegisterCheckCommand(CLI::App& app, Globals& g);
void RegisterHideCommands(CLI::App& app, Globals& g);  // hide, unhide, restore
void RegisterStatusCommand(CLI::App& app, Globals& g);
void RegisterInspectCommand(CLI::App& app, Globals& g);
void RegisterRunCommand(CLI::App& app, Globals& g);

// Runs before every command: finishes or rolls back an operation that a
// crashed devpass left half done (see hiding/journal.h), then gives back the
// devices of guests that died holding them (assign/ownership.h,
// RecoverStaleAssignments). Prints what it repaired or recovered to stderr.
// Never fails the command it precedes.
void RepairInterruptedOperations(const Globals& g);

}  // namespace devpass::cli
