#pragma once

// bench_report's logic (issue 7): raw "BENCH <metric> <way>[@<round>]
// <value>" samples from the benchmark harness's logs become one report,
// printed as a table and as JSON. Each figure is the median of several runs
// with min and max. Ratios are taken within one round: the harness runs every
// way once per round, one after the other in the same lab boot, so a way's
// ratio to its baseline is computed per round (median of that round's
// samples over the baseline's) and reported as the median, min and max over
// the rounds. The lab is an emulated machine whose speed drifts over minutes;
// ratios of the same round meet the same drift, absolute numbers do not.

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
  std::optional<int> round;  // "way@3": measured in round 3 of its part
  double value = 0;
};

enum class LineKind {
  kOther,      // no "BENCH " in it: ignored silently
  kSample,     // a sample
  kMalformed,  // has "BENCH " but not "<metric> <way>[@<round>] <value>
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

// A way's ratio to another way (its baseline, or devpass's to QEMU's).
struct RatioStats {
  // Per round, where both ways have samples of the same round: the ratio of
  // their medians in that round; median, min and max over those rounds.
  // Otherwise (samples without rounds, e.g. from older logs): the ratio of
  // the overall medians, with rounds = 0 and min = max = median.
  double median = 0;
  double min = 0;
  double max = 0;
  size_t rounds = 0;
};

// The ratio of `way` to `base`, or nothing when either has no samples or a
// median of 0.
std::optional<RatioStats> CompareWays(const std::vector<Sample>& way,
                                      const std::vector<Sample>& base);

struct WayRow {
  std::string way;
  std::string name;  // WayName(way)
  Stats stats;
  std::optional<RatioStats> ratio;  // to the baseline way
};

struct MetricReport {
  std::string metric;
  std::string title;
  std::string unit;
  std::string json_unit;
  std::optional<Better> better;  // unknown metrics: not known
  std::string baseline;          // "" = none
  std::vector<WayRow> ways;      // display order
  // devpass against compare_way, when both have samples.
  std::optional<RatioStats> devpass_vs_qemu;
  std::string compare_way;
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
