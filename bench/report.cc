#include "bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>

namespace devpass::bench {

const char kDisclaimer[] =
    "These figures come from the devpass lab: a QEMU machine in software "
    "emulation (TCG) with an emulated IOMMU, emulated devices and nested KVM. "
    "Absolute numbers are not hardware numbers; what carries over is the "
    "ratios. Ways compared with each other run in turn in one boot of the "
    "lab, once per round, and each ratio is taken within a round.";

const char kRatioNote[] =
    "Each figure is the median of n samples, with min and max. ratio = this "
    "way's median / the baseline way's median in the same round, given as "
    "the median over the rounds with its range (min-max); for 'lower is "
    "better' rows a ratio above 1 means slower.";

namespace {

constexpr MetricInfo kMetrics[] = {
    {"net.tx", "network: bulk TCP, guest -> peer", "MB/s", "MB/s",
     Better::kHigher, "native", "qemu-vfio"},
    {"net.rx", "network: bulk TCP, peer -> guest", "MB/s", "MB/s",
     Better::kHigher, "native", "qemu-vfio"},
    {"net.rtt", "network: TCP round trip (1 byte)", "µs", "us", Better::kLower,
     "native", "qemu-vfio"},
    {"nvme.seq_read", "NVMe: sequential read (O_DIRECT, 1 MiB)", "MB/s", "MB/s",
     Better::kHigher, "native", "qemu-vfio"},
    {"nvme.rand_read", "NVMe: 4 KiB random read, QD1", "IOPS", "IOPS",
     Better::kHigher, "native", "qemu-vfio"},
    {"edu.msi_rtt", "edu: interrupt round trip (MSI)", "µs", "us",
     Better::kLower, "native", "qemu-vfio"},
    {"edu.dma", "edu: DMA throughput (RAM -> device -> RAM)", "MB/s", "MB/s",
     Better::kHigher, "native", "qemu-vfio"},
    {"launch.userspace", "launch to guest user space, one device", "s", "s",
     Better::kLower, "qemu", "qemu"},
    {"dmamap.per_gib", "DMA-map time per GiB of guest RAM", "s/GiB", "s/GiB",
     Better::kLower, "4k", "qemu-vfio"},
    {"list.devices4096", "devpass list, 4096 devices (synthetic sysfs)", "ms",
     "ms", Better::kLower, "", "qemu-vfio"},
};

struct WayInfo {
  std::string_view way;
  std::string_view name;
};

constexpr WayInfo kWays[] = {
    {"native", "native (lab host driver)"},
    {"devpass", "devpass passthrough"},
    {"devpass-nothp", "devpass, --no-thp"},
    {"devpass-4k", "devpass, 4 KiB pages"},
    {"devpass-hugepages", "devpass, huge pages"},
    {"qemu-vfio", "QEMU vfio-pci"},
    {"qemu-vfio-nothp", "QEMU vfio-pci, THP off"},
    {"qemu", "QEMU"},
    {"qemu-hugepages", "QEMU, huge pages"},
    {"qemu-emulated", "QEMU emulated"},
    {"virtio", "virtio (paravirt)"},
    {"4k", "4 KiB pages"},
    {"thp", "transparent huge pages"},
    {"2m", "2 MiB huge pages"},
};

constexpr std::string_view kToken = "BENCH ";

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Metric and way names: letters, digits, '.', '_', '-'.
bool IsName(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

std::vector<std::string_view> SplitFields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Word-wraps text to lines of at most width columns.
std::string Wrap(std::string_view text, size_t width) {
  std::string out, line;
  for (std::string_view word : SplitFields(text)) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
  }
  if (!line.empty()) out += line + "\n";
  return out;
}

// Two decimals; small ratios keep two significant digits ("0.016").
std::string FormatRatio(double r) {
  if (r > 0 && r < 0.1) return fmt::format("{:.2g}", r);
  return fmt::format("{:.2f}", r);
}

// "0.91-1.18": a ratio's range over its rounds.
std::string RatioRange(const RatioStats& r) {
  if (r.rounds < 2) return "";
  return FormatRatio(r.min) + "-" + FormatRatio(r.max);
}

// How the ratio was taken, for the table's wording.
std::string RatioRounds(const RatioStats& r) {
  if (r.rounds == 0) return ", medians of separate runs";
  return fmt::format(", {} round{}", r.rounds, r.rounds == 1 ? "" : "s");
}

std::optional<double> Ratio(double num, double den) {
  if (den == 0 || !std::isfinite(num / den)) return std::nullopt;
  return num / den;
}

nlohmann::json RatioJson(const std::optional<RatioStats>& r) {
  if (!r) return nullptr;
  return {{"median", r->median},
          {"min", r->min},
          {"max", r->max},
          {"rounds", r->rounds}};
}

}  // namespace

std::span<const MetricInfo> KnownMetrics() { return kMetrics; }

const MetricInfo* FindMetric(std::string_view metric) {
  for (const MetricInfo& m : kMetrics) {
    if (m.metric == metric) return &m;
  }
  return nullptr;
}

int WayRank(std::string_view way) {
  int rank = 0;
  for (const WayInfo& w : kWays) {
    if (w.way == way) return rank;
    ++rank;
  }
  return rank;
}

bool WayBefore(std::string_view a, std::string_view b) {
  int ra = WayRank(a), rb = WayRank(b);
  if (ra != rb) return ra < rb;
  return a < b;
}

std::string WayName(std::string_view way) {
  for (const WayInfo& w : kWays) {
    if (w.way == way) return std::string(w.name);
  }
  return std::string(way);
}

LineKind ParseLine(std::string_view line, Sample* out) {
  size_t pos = line.find(kToken);
  if (pos == std::string_view::npos) return LineKind::kOther;
  std::vector<std::string_view> f =
      SplitFields(line.substr(pos + kToken.size()));
  if (f.size() != 3 || !IsName(f[0])) return LineKind::kMalformed;
  // The way, optionally "@<round>".
  std::string_view way = f[1];
  std::optional<int> round;
  if (size_t at = way.find('@'); at != std::string_view::npos) {
    std::string_view r = way.substr(at + 1);
    int n = 0;
    auto [rend, rec] = std::from_chars(r.data(), r.data() + r.size(), n);
    if (r.empty() || rec != std::errc() || rend != r.data() + r.size() ||
        n < 0) {
      return LineKind::kMalformed;
    }
    round = n;
    way = way.substr(0, at);
  }
  if (!IsName(way)) return LineKind::kMalformed;
  std::string_view v = f[2];
  double value = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  // Sizes, rates and times: finite and never negative.
  if (ec != std::errc() || end != v.data() + v.size() || v.empty() ||
      !std::isfinite(value) || value < 0) {
    return LineKind::kMalformed;
  }
  out->metric = std::string(f[0]);
  out->way = std::string(way);
  out->round = round;
  out->value = value;
  return LineKind::kSample;
}

void ParseText(std::string_view text, ParseResult* into) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    Sample s;
    switch (ParseLine(line, &s)) {
      case LineKind::kSample:
        into->samples.push_back(std::move(s));
        break;
      case LineKind::kMalformed:
        ++into->malformed;
        break;
      case LineKind::kOther:
        break;
    }
  }
}

Stats Summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  Stats s;
  s.n = values.size();
  if (values.empty()) return s;
  size_t mid = s.n / 2;
  s.median = s.n % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  s.min = values.front();
  s.max = values.back();
  return s;
}

std::optional<RatioStats> CompareWays(const std::vector<Sample>& way,
                                      const std::vector<Sample>& base) {
  if (way.empty() || base.empty()) return std::nullopt;
  auto by_round = [](const std::vector<Sample>& samples) {
    std::map<int, std::vector<double>> rounds;
    for (const Sample& s : samples) {
      if (s.round) rounds[*s.round].push_back(s.value);
    }
    return rounds;
  };
  std::map<int, std::vector<double>> a = by_round(way), b = by_round(base);
  std::vector<double> ratios;
  for (const auto& [round, values] : a) {
    auto it = b.find(round);
    if (it == b.end()) continue;
    if (auto r = Ratio(Summarize(values).median, Summarize(it->second).median))
      ratios.push_back(*r);
  }
  if (!ratios.empty()) {
    Stats st = Summarize(ratios);
    return RatioStats{st.median, st.min, st.max, st.n};
  }
  auto values = [](const std::vector<Sample>& samples) {
    std::vector<double> v;
    for (const Sample& s : samples) v.push_back(s.value);
    return v;
  };
  auto r = Ratio(Summarize(values(way)).median, Summarize(values(base)).median);
  if (!r) return std::nullopt;
  return RatioStats{*r, *r, *r, 0};
}

Report BuildReport(const std::vector<Sample>& samples,
                   std::vector<std::string> sources,
                   std::vector<std::pair<std::string, std::string>> meta) {
  Report report;
  report.sources = std::move(sources);
  report.meta = std::move(meta);
  report.samples = samples.size();

  std::map<std::string, std::map<std::string, std::vector<Sample>>> grouped;
  for (const Sample& s : samples) grouped[s.metric][s.way].push_back(s);

  std::vector<std::string> order;
  for (const MetricInfo& m : kMetrics) {
    if (grouped.count(std::string(m.metric))) order.emplace_back(m.metric);
  }
  for (const auto& [metric, ways] : grouped) {
    if (!FindMetric(metric)) order.push_back(metric);
  }

  for (const std::string& metric : order) {
    MetricReport m;
    m.metric = metric;
    m.compare_way = "qemu-vfio";
    if (const MetricInfo* info = FindMetric(metric)) {
      m.title = info->title;
      m.unit = info->unit;
      m.json_unit = info->json_unit;
      m.better = info->better;
      m.baseline = info->baseline;
      m.compare_way = info->compare_with;
    } else {
      m.title = metric;
      m.unit = m.json_unit = "?";
    }
    const auto& ways = grouped[metric];
    auto base = m.baseline.empty() ? ways.end() : ways.find(m.baseline);
    for (const auto& [way, way_samples] : ways) {
      std::vector<double> values;
      for (const Sample& s : way_samples) values.push_back(s.value);
      m.ways.push_back({.way = way,
                        .name = WayName(way),
                        .stats = Summarize(values),
                        .ratio = base == ways.end()
                                     ? std::nullopt
                                     : CompareWays(way_samples, base->second)});
    }
    std::sort(m.ways.begin(), m.ways.end(),
              [](const WayRow& a, const WayRow& b) {
                return WayBefore(a.way, b.way);
              });
    auto dev = ways.find("devpass");
    auto other = ways.find(m.compare_way);
    if (dev != ways.end() && other != ways.end()) {
      m.devpass_vs_qemu = CompareWays(dev->second, other->second);
    }
    report.metrics.push_back(std::move(m));
  }
  return report;
}

nlohmann::json ToJson(const Report& report) {
  nlohmann::json j;
  j["disclaimer"] = kDisclaimer;
  j["ratio_note"] = kRatioNote;
  if (!report.meta.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : report.meta) meta[k] = v;
    j["meta"] = meta;
  }
  j["sources"] = report.sources;
  j["samples"] = report.samples;
  j["metrics"] = nlohmann::json::array();
  for (const MetricReport& m : report.metrics) {
    nlohmann::json jm;
    jm["metric"] = m.metric;
    jm["title"] = m.title;
    jm["unit"] = m.json_unit;
    if (m.better) {
      jm["better"] = *m.better == Better::kHigher ? "higher" : "lower";
    } else {
      jm["better"] = nullptr;
    }
    jm["baseline"] = m.baseline.empty() ? nlohmann::json(nullptr)
                                        : nlohmann::json(m.baseline);
    if (m.devpass_vs_qemu) {
      jm["devpass_vs_qemu"] = RatioJson(m.devpass_vs_qemu);
      jm["devpass_vs_qemu"]["with"] = m.compare_way;
    }
    jm["ways"] = nlohmann::json::array();
    for (const WayRow& w : m.ways) {
      jm["ways"].push_back({{"way", w.way},
                            {"name", w.name},
                            {"n", w.stats.n},
                            {"median", w.stats.median},
                            {"min", w.stats.min},
                            {"max", w.stats.max},
                            {"ratio", RatioJson(w.ratio)}});
    }
    j["metrics"].push_back(std::move(jm));
  }
  return j;
}

std::string FormatNumber(double v) {
  double a = std::fabs(v);
  if (a == 0) return "0";
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  if (a >= 1) return fmt::format("{:.2f}", v);
  if (a >= 0.001) return fmt::format("{:.3}", v);
  return fmt::format("{:.3g}", v);
}

std::string FormatTable(const Report& report) {
  constexpr size_t kWidth = 78;
  std::string out = "devpass benchmark report\n\n";
  out += Wrap(kDisclaimer, kWidth);
  for (const auto& [k, v] : report.meta) out += fmt::format("{}: {}\n", k, v);
  out += "\n";
  out += Wrap(fmt::format("Input: {} ({} samples)",
                          fmt::join(report.sources, ", "), report.samples),
              kWidth);
  out += Wrap(kRatioNote, kWidth);

  for (const MetricReport& m : report.metrics) {
    std::string better = !m.better                      ? "(unknown metric)"
                         : *m.better == Better::kHigher ? "(higher is better)"
                                                        : "(lower is better)";
    out += fmt::format("\n{} [{}] {}\n", m.title, m.unit, better);
    if (m.title != m.metric) out += fmt::format("  metric {}\n", m.metric);

    // Cells first, to size the columns.
    std::vector<std::vector<std::string>> rows;
    rows.push_back(
        {"way", "median", "min", "max", "n", "ratio", "range", "vs baseline"});
    for (const WayRow& w : m.ways) {
      std::string ratio = "-", range, wording;
      if (w.ratio) {
        ratio = FormatRatio(w.ratio->median);
        if (w.way == m.baseline) {
          wording = "(baseline)";
        } else {
          range = RatioRange(*w.ratio);
          wording =
              fmt::format("{}x {}{}", ratio, m.baseline, RatioRounds(*w.ratio));
        }
      } else if (!m.baseline.empty()) {
        wording = fmt::format("(no {} samples)", m.baseline);
      }
      rows.push_back({w.name, FormatNumber(w.stats.median),
                      FormatNumber(w.stats.min), FormatNumber(w.stats.max),
                      std::to_string(w.stats.n), ratio, range, wording});
    }
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) {
        width[i] = std::max(width[i], r[i].size());
      }
    }
    for (const auto& r : rows) {
      std::string line = fmt::format("  {:<{}}", r[0], width[0]);
      for (size_t i = 1; i + 1 < r.size(); ++i) {
        line += fmt::format("  {:>{}}", r[i], width[i]);
      }
      line += fmt::format("  {}", r.back());
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
    if (m.devpass_vs_qemu) {
      const RatioStats& r = *m.devpass_vs_qemu;
      const std::string range = RatioRange(r);
      out +=
          fmt::format("  devpass vs {}: {}{}{}\n", WayName(m.compare_way),
                      FormatRatio(r.median),
                      range.empty() ? "" : " (" + range + ")", RatioRounds(r));
    }
  }
  return out;
}

}  // namespace devpass::bench
