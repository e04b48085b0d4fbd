// bench_report: turns the benchmark harness's raw samples into one table and
// a JSON file (issue 7).
//
// Usage: bench_report [--json FILE|-] [--meta KEY=VALUE]... LOG...
//   LOG     a log file, or - for stdin; every line containing
//           "BENCH <metric> <way>[@<round>] <value>" is a sample
//   --json  also write the report as JSON to FILE; with -, write the JSON to
//           stdout instead of the table
//   --meta  add KEY: VALUE to the report (date, git commit, lab CPU, ...)
// Exit status: 0 ok, 1 no sample or an unreadable input, 2 usage error.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/report.h"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

bool ReadInput(const std::string& path, std::string* text) {
  std::ostringstream buf;
  if (path == "-") {
    buf << std::cin.rdbuf();
    *text = buf.str();
    return !std::cin.bad();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  buf << in.rdbuf();
  *text = buf.str();
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace devpass::bench;
  std::vector<std::string> inputs;
  std::string json_path;
  std::vector<std::string> meta_args;

  CLI::App app(
      "bench_report: the benchmark harness's raw \"BENCH <metric> <way> "
      "<value>\" samples as one table (median, min, max, ratio to a baseline "
      "way) and JSON.");
  app.add_option("--json", json_path,
                 "Also write the report as JSON to FILE; '-' writes the JSON "
                 "to stdout instead of the table")
      ->type_name("FILE");
  app.add_option("--meta", meta_args,
                 "Add KEY: VALUE to the report (repeatable)")
      ->type_name("KEY=VALUE")
      ->take_all()
      ->allow_extra_args(false)
      ->check([](const std::string& s) -> std::string {
        size_t eq = s.find('=');
        if (eq == std::string::npos || eq == 0) {
          return "expected KEY=VALUE, got '" + s + "'";
        }
        return "";
      });
  app.add_option("logs", inputs, "Log files; '-' reads stdin")
      ->required()
      ->type_name("LOG");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  // Later --meta KEY=... replaces an earlier one, in place.
  std::vector<std::pair<std::string, std::string>> meta;
  for (const std::string& arg : meta_args) {
    size_t eq = arg.find('=');
    std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    auto it = std::find_if(meta.begin(), meta.end(),
                           [&](const auto& kv) { return kv.first == key; });
    if (it != meta.end()) {
      it->second = value;
    } else {
      meta.emplace_back(key, value);
    }
  }

  ParseResult parsed;
  std::vector<std::string> sources;
  for (const std::string& path : inputs) {
    std::string text;
    if (!ReadInput(path, &text)) {
      fmt::print(stderr, "bench_report: cannot read {}: {}\n", path,
                 std::strerror(errno));
      return kExitError;
    }
    ParseText(text, &parsed);
    sources.push_back(path == "-" ? "(stdin)" : path);
  }
  if (parsed.malformed > 0) {
    fmt::print(stderr,
               "bench_report: ignored {} BENCH line(s) that are not "
               "\"BENCH <metric> <way> <value>\"\n",
               parsed.malformed);
  }
  if (parsed.samples.empty()) {
    fmt::print(stderr,
               "bench_report: no sample found in {} (a sample is a line "
               "containing \"BENCH <metric> <way> <value>\")\n",
               fmt::join(sources, ", "));
    return kExitError;
  }

  Report report = BuildReport(parsed.samples, sources, meta);
  std::string json = ToJson(report).dump(2) + "\n";
  if (json_path == "-") {
    std::fwrite(json.data(), 1, json.size(), stdout);
    return 0;
  }
  std::string table = FormatTable(report);
  std::fwrite(table.data(), 1, table.size(), stdout);
  if (!json_path.empty()) {
    std::ofstream out(json_path, std::ios::binary | std::ios::trunc);
    out << json;
    out.close();
    if (!out) {
      fmt::print(stderr, "bench_report: cannot write {}: {}\n", json_path,
                 std::strerror(errno));
      return kExitError;
    }
  }
  return 0;
}
