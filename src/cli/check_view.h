#pragma once

// What `devpass check` prints: the readiness findings with their fixes and a
// summary. The command exits with kExitCheckFailed when anything FAILs.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/readiness.h"

namespace devpass::cli {

// {"findings": [{id, title, status, detail, fix}], "summary": {pass, warn,
//  fail}, "ready": bool}
nlohmann::json CheckJson(const std::vector<host::Finding>& findings);
std::string CheckText(const std::vector<host::Finding>& findings);

}  // namespace devpass::cli
