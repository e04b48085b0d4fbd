#pragma once

// JSON views of the hiding module's reports, shared by hide/unhide/restore
// and status so scripts see one shape.

#include <nlohmann/json.hpp>

#include "hiding/hider.h"

namespace devpass::cli {

nlohmann::json DeviceResultToJson(const hiding::DeviceResult& d);
nlohmann::json OpReportToJson(const hiding::OpReport& r);
nlohmann::json JournalRecordToJson(const hiding::JournalRecord& r);
nlohmann::json StatusReportToJson(const hiding::StatusReport& r);

// Config for the CLI's Hider: this binary's path for the boot unit.
hiding::HiderConfig CliHiderConfig();

}  // namespace devpass::cli
