#include "cli/commands.h"

namespace devpass::cli {

void RegisterInspectCommand(CLI::App& app, Globals& g) {
  (void)app;
  (void)g;
}

}  // namespace devpass::cli
