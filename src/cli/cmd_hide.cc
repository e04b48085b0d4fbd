#include "cli/commands.h"

namespace devpass::cli {

void RegisterHideCommands(CLI::App& app, Globals& g) {
  (void)app;
  (void)g;
}

void RepairInterruptedOperations(const Globals& g) { (void)g; }

}  // namespace devpass::cli
