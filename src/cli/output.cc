#include "cli/output.h"

#include <cstdio>
#include <iostream>

#include "cli/commands.h"

namespace devpass::cli {

nlohmann::json ErrorToJson(const Error& e) {
  nlohmann::json j = {{"code", std::string(ErrorCodeName(e.code))},
                      {"message", e.message}};
  if (e.sys_errno != 0) j["errno"] = e.sys_errno;
  return j;
}

int ReportError(const Error& e, bool json) {
  if (json) {
    PrintJson({{"error", ErrorToJson(e)}});
  } else {
    std::fflush(stdout);
    std::cerr << "devpass: error: " << e.ToString() << "\n";
  }
  return e.code == ErrorCode::kInvalidArgument ? kExitUsage : kExitError;
}

void PrintJson(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

void Warn(std::string_view message) {
  std::fflush(stdout);
  std::cerr << "devpass: warning: " << message << "\n";
}

}  // namespace devpass::cli
