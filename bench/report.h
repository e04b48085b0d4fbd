#pragma once

// bench_report's logic (issue 7): raw "BENCH <metric> <way> <value>" samples
// from the benchmark harness's logs become one report, printed as a table and
// as JSON. Each figure is the median of several runs with min and max; ratios
// are taken within one run (one set of inputs) against a baseline way, since
// the lab is an emulated machine whose absolute numbers mean little.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devpass::bench {

// Printed at the top of the table and stored in the JSON.
extern const char kDisclaimer[];

// What a ratio means, printed above the metrics.
extern const char kRatioNote[];

enum class Better { kHigher, kLower };

// One row of the known-metric table.
struct MetricInfo {
  std::string_view metric;
  std::string_view title;
  std::string_view unit;       // for the table ("µs" allowed)
  std::string_view json_unit;  // ASCII ("us")
  Better better;
  std::string_view baseline;      // "" = no baseline way
  std::string_view compare_with;  // way devpass is set against ("qemu-vfio")
};

// Known metrics in report order.
std::span<const MetricInfo> KnownMetrics();

// nullptr for a metric not in the table.
const MetricInfo* FindMetric(std::string_view metric);

// Display position of a way: known ways by the fixed order, then the rest
// (sorted among themselves by name by the caller).
int WayRank(std::string_view way);

// True if way a is listed before way b.
bool WayBefore(std::string_view a, std::string_view b);

// "native (lab host driver)" for "native"; unknown ways as given.
std::string WayName(std::string_view way);

struct Sample {
  std::string metric;
  std::string way;
  double value = 0;
};

enum class LineKind {
  kOther,      // no "BENCH " in it: ignored silently
  kSample,     // a sample
  kMalformed,  // has "BENCH " but not "<metric> <way> <value>" after it
};

// Parses one line (with or without its '\n' or '\r'); fills *out for kSample.
LineKind ParseLine(std::string_view line, Sample* out);

struct ParseResult {
  std::vector<Sample> samples;
  size_t malformed = 0;  // BENCH lines that did not parse
};

// Parses every line of text, appending to *into.
void ParseText(std::string_view text, ParseResult* into);

struct Stats {
  size_t n = 0;
  double median = 0;  // mean of the two middle values for even n
  double min = 0;
  double max = 0;
};

// values must not be empty.
Stats Summarize(std::vector<double> values);

struct WayRow {
  std::string way;
  std::string name;  // WayName(way)
  Stats stats;
  std::optional<double> ratio;  // median / baseline median
};

struct MetricReport {
  std::string metric;
  std::string title;
  std::string unit;
  std::string json_unit;
  std::optional<Better> better;  // unknown metrics: not known
  std::string baseline;          // "" = none
  std::vector<WayRow> ways;      // display order
  // median(devpass) / median(compare_way), when both have samples.
  std::optional<double> devpass_vs_qemu;
  std::string compare_way;
  // The same for the ways measured alternately in one lab boot (way names
  // with "-ab": bench/lab/in-lab.sh's passthrough part).
  std::optional<double> devpass_vs_qemu_alternated;
};

struct Report {
  std::vector<std::string> sources;
  std::vector<std::pair<std::string, std::string>> meta;  // in given order
  size_t samples = 0;
  std::vector<MetricReport> metrics;  // known ones first, then by name
};

// Groups the samples per (metric, way) and takes the statistics.
Report BuildReport(const std::vector<Sample>& samples,
                   std::vector<std::string> sources,
                   std::vector<std::pair<std::string, std::string>> meta);

nlohmann::json ToJson(const Report& report);

// The human-readable table: disclaimer, meta, inputs, then one block per
// metric.
std::string FormatTable(const Report& report);

// A number with about three significant digits, without exponent for the
// usual range ("1234", "56.7", "0.123").
std::string FormatNumber(double v);

}  // namespace devpass::bench
