#pragma once

// Printing helpers so every command reports errors the same way: text on
// stderr ("devpass: error: ..."), or with --json a {"error": {...}} object on
// stdout, so scripts always get JSON.

#include <nlohmann/json.hpp>
#include <string_view>

#include "base/error.h"

namespace devpass::cli {

nlohmann::json ErrorToJson(const Error& e);

// Prints the error and returns kExitError (kExitUsage for bad arguments).
int ReportError(const Error& e, bool json);

void PrintJson(const nlohmann::json& j);

// Prints a warning line on stderr ("devpass: warning: ...").
void Warn(std::string_view message);

}  // namespace devpass::cli
