#include "cli/commands.h"

namespace devpass::cli {

void RegisterCheckCommand(CLI::App& app, Globals& g) {
  (void)app;
  (void)g;
}

}  // namespace devpass::cli
