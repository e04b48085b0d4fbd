// devpass status: what devpass has hidden (and which guest owns it), what is
// persisted for boot, and operations a crashed devpass left unfinished.

#include <iostream>

#include "cli/commands.h"
#include "cli/hiding_json.h"
#include "cli/output.h"
#include "hiding/hider.h"
#include "hiding/kernel.h"

namespace devpass::cli {

nlohmann::json DeviceResultToJson(const hiding::DeviceResult& d) {
  nlohmann::json j = {
      {"address", d.address.ToString()},
      {"action", std::string(hiding::ActionName(d.action))},
      {"stub", d.stub},
      {"original_driver", d.original_driver},
      {"driver", d.driver},
      {"vfio_node", d.vfio_node.empty() ? nlohmann::json(nullptr)
                                        : nlohmann::json(d.vfio_node)},
      {"persisted", d.persisted},
      {"message", d.message}};
  if (d.error) j["error"] = ErrorToJson(*d.error);
  return j;
}

nlohmann::json OpReportToJson(const hiding::OpReport& r) {
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& d : r.devices) devices.push_back(DeviceResultToJson(d));
  return {{"ok", r.ok()}, {"devices", devices}, {"warnings", r.warnings}};
}

nlohmann::json JournalRecordToJson(const hiding::JournalRecord& r) {
  return {{"op", r.op},     {"address", r.address.ToString()},
          {"stub", r.stub}, {"original_driver", r.original_driver},
          {"step", r.step}, {"persist", r.persist},
          {"pid", r.pid},   {"started", r.started}};
}

nlohmann::json StatusReportToJson(const hiding::StatusReport& r) {
  nlohmann::json hidden = nlohmann::json::array();
  for (const auto& s : r.hidden) {
    const auto& e = s.entry;
    nlohmann::json a = nullptr;
    if (e.assignment) {
      a = {{"guest", e.assignment->guest},
           {"pid", e.assignment->pid},
           {"start_time", e.assignment->start_time},
           {"since", e.assignment->since},
           {"managed", e.assignment->managed},
           {"adopted", e.assignment->adopted},
           {"alive", s.owner.alive()},
           {"owner_detail", s.owner.detail}};
    }
    hidden.push_back({{"address", e.address.ToString()},
                      {"ids", e.ids},
                      {"stub", e.stub},
                      {"original_driver", e.original_driver},
                      {"persisted", e.persisted},
                      {"hidden_since", e.hidden_since},
                      {"present", s.present},
                      {"current_driver", s.current_driver},
                      {"drifted", s.drifted},
                      {"assignment", a}});
  }
  nlohmann::json persisted = nlohmann::json::array();
  for (const auto& p : r.persisted_only) {
    persisted.push_back({{"address", p.address.ToString()},
                         {"stub", p.stub},
                         {"original_driver", p.original_driver}});
  }
  nlohmann::json pending = nlohmann::json::array();
  for (const auto& p : r.pending) pending.push_back(JournalRecordToJson(p));
  return {{"hidden", hidden},
          {"persisted_not_hidden", persisted},
          {"pending", pending},
          {"warnings", r.warnings}};
}

namespace {

// "web (pid 4242, since ..., managed)", or "-" when not assigned.
std::string DescribeAssignment(const hiding::StatusEntry& s) {
  const auto& a = s.entry.assignment;
  if (!a) return "-";
  std::string how = a->managed   ? ", hidden for this run"
                    : a->adopted ? ", adopted from vfio-pci"
                                 : "";
  std::string state =
      s.owner.alive()
          ? ""
          : fmt::format(" [GONE: {}; the next devpass command gives it back]",
                        s.owner.detail);
  return fmt::format("guest '{}' (pid {}, since {}{}){}", a->guest, a->pid,
                     a->since, how, state);
}

void PrintHuman(const hiding::StatusReport& r) {
  if (r.hidden.empty()) {
    std::cout << "No devices are hidden by devpass.\n";
  } else {
    std::cout << "Hidden devices:\n";
    for (const auto& s : r.hidden) {
      const auto& e = s.entry;
      std::cout << fmt::format(
          "  {}  {}  {} (was {})  since {}{}  driver now: {}{}  assigned: {}\n",
          e.address, e.ids.empty() ? "?" : e.ids, e.stub,
          e.original_driver.empty() ? "no driver" : e.original_driver,
          e.hidden_since, e.persisted ? "  persisted" : "",
          !s.present ? "(device gone)"
                     : (s.current_driver.empty() ? "none" : s.current_driver),
          s.drifted ? "  [DRIFTED off the stub]" : "", DescribeAssignment(s));
    }
  }
  if (!r.persisted_only.empty()) {
    std::cout << "Persisted for boot but not hidden now ('devpass restore' "
                 "hides them):\n";
    for (const auto& p : r.persisted_only) {
      std::cout << fmt::format(
          "  {}  {} (was {})\n", p.address, p.stub,
          p.original_driver.empty() ? "no driver" : p.original_driver);
    }
  }
  if (!r.pending.empty()) {
    std::cout
        << "Interrupted operations (the next devpass command repairs them):\n";
    for (const auto& p : r.pending) {
      std::cout << fmt::format(
          "  {} {} on {} stopped after step {} (pid {}, {})\n", p.op, p.address,
          p.stub, p.step, p.pid, p.started);
    }
  }
  for (const auto& w : r.warnings) Warn(w);
}

}  // namespace

void RegisterStatusCommand(CLI::App& app, Globals& g) {
  CLI::App* status =
      app.add_subcommand("status",
                         "Show hidden devices and the guests they are assigned "
                         "to, boot persistence "
                         "and interrupted operations");
  status->add_flag("--json", g.json, "Print machine-readable JSON");
  status->callback([&g] {
    hiding::RealKernel kernel(g.root());  // status only reads
    hiding::Hider hider(g.root(), kernel, CliHiderConfig());
    auto r = hider.Status();
    if (!r) {
      g.exit_code = ReportError(r.error(), g.json);
      return;
    }
    if (g.json) {
      PrintJson(StatusReportToJson(*r));
    } else {
      PrintHuman(*r);
    }
    g.exit_code = kExitOk;
  });
}

}  // namespace devpass::cli
