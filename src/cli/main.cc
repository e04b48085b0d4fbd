// devpass: direct device assignment (PCI passthrough) on Linux KVM + VFIO.

#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  devpass::cli::Globals g;
  CLI::App app;
  devpass::cli::ConfigureApp(app, g);
  return devpass::cli::RunApp(app, g, argc, argv);
}
