#include "cli/check_view.h"

#include <fmt/format.h>

namespace devpass::cli {
namespace {

struct Counts {
  int pass = 0, warn = 0, fail = 0;
};

Counts Count(const std::vector<host::Finding>& findings) {
  Counts c;
  for (const auto& f : findings) {
    switch (f.status) {
      case host::FindingStatus::kPass:
        ++c.pass;
        break;
      case host::FindingStatus::kWarn:
        ++c.warn;
        break;
      case host::FindingStatus::kFail:
        ++c.fail;
        break;
    }
  }
  return c;
}

}  // namespace

nlohmann::json CheckJson(const std::vector<host::Finding>& findings) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : findings) {
    list.push_back({{"id", f.id},
                    {"title", f.title},
                    {"status", std::string(host::FindingStatusName(f.status))},
                    {"detail", f.detail},
                    {"fix", f.fix.empty() ? nlohmann::json(nullptr)
                                          : nlohmann::json(f.fix)}});
  }
  Counts c = Count(findings);
  return {{"findings", list},
          {"summary", {{"pass", c.pass}, {"warn", c.warn}, {"fail", c.fail}}},
          {"ready", c.fail == 0}};
}

std::string CheckText(const std::vector<host::Finding>& findings) {
  std::string out;
  for (const auto& f : findings) {
    out += fmt::format("{}  {}: {}\n", host::FindingStatusName(f.status),
                       f.title, f.detail);
    if (!f.fix.empty()) out += fmt::format("      fix: {}\n", f.fix);
  }
  Counts c = Count(findings);
  out += fmt::format("\n{} passed, {} warning{}, {} failed: ", c.pass, c.warn,
                     c.warn == 1 ? "" : "s", c.fail);
  if (c.fail > 0) {
    out +=
        "this host is NOT ready for device assignment; apply the fixes "
        "above.\n";
  } else if (c.warn > 0) {
    out += "this host is ready for device assignment (see the warnings).\n";
  } else {
    out += "this host is ready for device assignment.\n";
  }
  return out;
}

}  // namespace devpass::cli
