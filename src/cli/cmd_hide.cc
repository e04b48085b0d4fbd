// devpass hide / unhide / restore, and the recovery that runs before every
// command (interrupted operations, devices of guests that are gone). The
// work is in hiding/hider.h and assign/ownership.h; this file parses
// arguments and prints what happened.

#include <iostream>
#include <memory>

#include "assign/ownership.h"
#include "cli/commands.h"
#include "cli/hiding_json.h"
#include "cli/output.h"
#include "hiding/hider.h"
#include "hiding/kernel.h"

namespace devpass::cli {
namespace {

struct HideArgs {
  std::vector<std::string> devices;
  hiding::HideOptions options;
};

struct UnhideArgs {
  std::vector<std::string> devices;
  hiding::UnhideOptions options;
};

// Prints a report; returns the exit status.
int Print(const Result<hiding::OpReport>& r, const Globals& g) {
  if (!r) return ReportError(r.error(), g.json);
  if (g.json) {
    PrintJson(OpReportToJson(*r));
  } else {
    for (const auto& d : r->devices) {
      if (d.action == hiding::DeviceResult::Action::kFailed) {
        std::fflush(stdout);
        std::cerr << "devpass: error: " << d.message << "\n";
      } else {
        std::cout << d.message << (d.persisted ? " [persisted]" : "") << "\n";
      }
    }
    for (const auto& w : r->warnings) Warn(w);
  }
  return r->ok() ? kExitOk : kExitError;
}

}  // namespace

hiding::HiderConfig CliHiderConfig() {
  hiding::HiderConfig c;
  c.devpass_binary = hiding::CurrentExecutable();
  return c;
}

void RegisterHideCommands(CLI::App& app, Globals& g) {
  auto hide_args = std::make_shared<HideArgs>();
  CLI::App* hide = app.add_subcommand(
      "hide",
      "Hide PCI devices from the host: bind them to a stub driver (vfio-pci by "
      "default) so a guest can own them");
  hide->add_option("devices", hide_args->devices,
                   "PCI addresses (0000:01:00.0)")
      ->required();
  hide->add_option("--driver", hide_args->options.driver, "Stub driver")
      ->check(CLI::IsMember({"vfio-pci", "pci-stub", "xen-pciback"}))
      ->capture_default_str();
  hide->add_flag("--group", hide_args->options.group,
                 "Hide every non-bridge member of the devices' IOMMU groups");
  hide->add_flag(
      "--persist", hide_args->options.persist,
      "Hide the devices again at every boot (udev rule + systemd unit)");
  hide->add_flag(
      "--force", hide_args->options.force,
      "Hide devices the host depends on (boot GPU, root disk, default "
      "route network); does not override IOMMU group viability");
  hide->add_flag("--json", g.json, "Print machine-readable JSON");
  hide->callback([&g, hide_args] {
    hiding::RealKernel kernel(g.root());
    hiding::Hider hider(g.root(), kernel, CliHiderConfig());
    g.exit_code = Print(hider.Hide(hide_args->devices, hide_args->options), g);
  });

  auto unhide_args = std::make_shared<UnhideArgs>();
  CLI::App* unhide = app.add_subcommand(
      "unhide", "Give hidden devices back to the driver they had before");
  unhide->add_option("devices", unhide_args->devices, "PCI addresses")
      ->required();
  unhide->add_flag("--persist", unhide_args->options.persist,
                   "Also stop hiding the devices at boot");
  unhide->add_flag("--json", g.json, "Print machine-readable JSON");
  unhide->callback([&g, unhide_args] {
    hiding::RealKernel kernel(g.root());
    hiding::Hider hider(g.root(), kernel, CliHiderConfig());
    g.exit_code =
        Print(hider.Unhide(unhide_args->devices, unhide_args->options), g);
  });

  CLI::App* restore = app.add_subcommand(
      "restore",
      "Hide every persisted device (/etc/devpass/hidden); run at boot by "
      "devpass-restore.service");
  restore->add_flag("--json", g.json, "Print machine-readable JSON");
  restore->callback([&g] {
    hiding::RealKernel kernel(g.root());
    hiding::Hider hider(g.root(), kernel, CliHiderConfig());
    g.exit_code = Print(hider.Restore(), g);
  });
}

void RepairInterruptedOperations(const Globals& g) {
  hiding::RealKernel kernel(g.root());
  hiding::HiderConfig config = CliHiderConfig();
  hiding::Hider hider(g.root(), kernel, config);
  hiding::RepairReport r = hider.RepairInterrupted();
  for (const auto& line : r.repaired) {
    std::fflush(stdout);
    std::cerr << "devpass: repaired: " << line << "\n";
  }
  for (const auto& line : r.failed) Warn(line);
  // Then devices of guests that died without releasing them (SIGKILL, a
  // crash): after the journal, so that an interrupted unhide is complete
  // before ownership is looked at.
  auto recovered = assign::RecoverStaleAssignments(g.root(), kernel, config);
  if (!recovered) {
    Warn(recovered.error().ToString());
    return;
  }
  for (const auto& line : *recovered) {
    std::fflush(stdout);
    std::cerr << "devpass: recovered: " << line << "\n";
  }
}

}  // namespace devpass::cli
