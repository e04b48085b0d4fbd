// bench_report's logic: parsing BENCH lines out of lab logs, the statistics,
// ratios within one round, way and metric order, JSON shape and the table.

#include "bench/report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace devpass::bench {
namespace {

std::vector<Sample> Parse(std::string_view text, size_t* malformed = nullptr) {
  ParseResult r;
  ParseText(text, &r);
  if (malformed) *malformed = r.malformed;
  return r.samples;
}

Report Build(std::string_view text) { return BuildReport(Parse(text), {}, {}); }

const MetricReport* FindMetricReport(const Report& r, std::string_view metric) {
  for (const MetricReport& m : r.metrics) {
    if (m.metric == metric) return &m;
  }
  return nullptr;
}

TEST(BenchReportParseTest, PrefixesCarriageReturnsAndGarbage) {
  size_t malformed = 0;
  auto s = Parse(
      "[   12.3] BENCH net.tx native 1180.5\r\n"
      "BENCH edu.msi_rtt devpass 42\n"
      "guest: BENCH  edu.dma\tqemu-vfio  3.5e2  \r\n"
      "booting the guest kernel\n"
      "BENCH net.tx native\n"                      // two fields
      "BENCH net.tx native fast\n"                 // not a number
      "BENCH net.tx native 12 extra\n"             // four fields
      "BENCH net.tx native -3\n"                   // negative
      "BENCH net.tx native nan\n"                  // not finite
      "BENCH net.tx native 12ms\n"                 // trailing junk
      "BENCH net/tx native 12\n"                   // bad metric name
      "BENCH net.tx native@ 12\n"                  // no round after '@'
      "BENCH net.tx native@x 12\n"                 // round not a number
      "BENCH net.tx @3 12\n"                       // no way before '@'
      "BENCH net.tx native@3 7.5\n"                // a sample of round 3
      "BENCHMARK net.tx native 12\n"               // no "BENCH " token: silent
      "[ 1.0] BENCH list.devices4096 devpass 88",  // no final newline
      &malformed);
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].metric, "net.tx");
  EXPECT_EQ(s[0].way, "native");
  EXPECT_FALSE(s[0].round.has_value());
  EXPECT_DOUBLE_EQ(s[0].value, 1180.5);
  EXPECT_EQ(s[1].way, "devpass");
  EXPECT_DOUBLE_EQ(s[1].value, 42);
  EXPECT_EQ(s[2].metric, "edu.dma");
  EXPECT_EQ(s[2].way, "qemu-vfio");
  EXPECT_DOUBLE_EQ(s[2].value, 350);
  EXPECT_EQ(s[3].way, "native");
  EXPECT_EQ(s[3].round, 3);
  EXPECT_DOUBLE_EQ(s[3].value, 7.5);
  EXPECT_EQ(s[4].metric, "list.devices4096");
  EXPECT_DOUBLE_EQ(s[4].value, 88);
  EXPECT_EQ(malformed, 10u);
}

TEST(BenchReportParseTest, LineKinds) {
  Sample s;
  EXPECT_EQ(ParseLine("no samples here", &s), LineKind::kOther);
  EXPECT_EQ(ParseLine("BENCH", &s), LineKind::kOther);
  EXPECT_EQ(ParseLine("BENCH x", &s), LineKind::kMalformed);
  EXPECT_EQ(ParseLine("x BENCH a.b w 0\r", &s), LineKind::kSample);
  EXPECT_EQ(s.metric, "a.b");
  EXPECT_DOUBLE_EQ(s.value, 0);
}

TEST(BenchReportStatsTest, OddMedianMinMax) {
  Stats s = Summarize({5, 1, 9, 3, 7});
  EXPECT_EQ(s.n, 5u);
  EXPECT_DOUBLE_EQ(s.median, 5);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 9);
}

TEST(BenchReportStatsTest, EvenMedianIsMeanOfTheMiddleTwo) {
  Stats s = Summarize({10, 2, 4, 100});
  EXPECT_EQ(s.n, 4u);
  EXPECT_DOUBLE_EQ(s.median, 7);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(Summarize({3}).median, 3);
}

TEST(BenchReportBuildTest, RatioWithoutRoundsIsTheRatioOfMedians) {
  Report r = Build(
      "BENCH net.tx native 100\nBENCH net.tx native 120\n"
      "BENCH net.tx native 110\n"
      "BENCH net.tx devpass 60\nBENCH net.tx devpass 70\n"
      "BENCH net.rtt native 10\nBENCH net.rtt devpass 31\n");
  ASSERT_EQ(r.samples, 7u);
  const MetricReport* tx = FindMetricReport(r, "net.tx");
  ASSERT_NE(tx, nullptr);
  EXPECT_EQ(tx->baseline, "native");
  ASSERT_EQ(tx->ways.size(), 2u);
  EXPECT_EQ(tx->ways[0].way, "native");
  EXPECT_DOUBLE_EQ(tx->ways[0].stats.median, 110);
  ASSERT_TRUE(tx->ways[0].ratio.has_value());
  EXPECT_DOUBLE_EQ(tx->ways[0].ratio->median, 1.0);
  ASSERT_TRUE(tx->ways[1].ratio.has_value());
  EXPECT_DOUBLE_EQ(tx->ways[1].ratio->median, 65.0 / 110.0);
  EXPECT_EQ(tx->ways[1].ratio->rounds, 0u);  // no rounds: separate runs
  // Lower is better: the plain ratio of medians, above 1 = slower.
  const MetricReport* rtt = FindMetricReport(r, "net.rtt");
  ASSERT_NE(rtt, nullptr);
  EXPECT_EQ(rtt->better, Better::kLower);
  EXPECT_DOUBLE_EQ(rtt->ways[1].ratio->median, 3.1);
}

TEST(BenchReportBuildTest, RatiosArePairedWithinEachRound) {
  // Round 1 ran fast, round 2 slow (the lab drifted), round 3 has no
  // baseline sample: devpass's ratio is 0.5 in both paired rounds, although
  // its overall median (80) over native's (150) would say 0.53.
  Report r = Build(
      "BENCH net.tx native@1 200\nBENCH net.tx devpass@1 100\n"
      "BENCH net.tx native@2 100\nBENCH net.tx devpass@2 50\n"
      "BENCH net.tx devpass@3 80\n"
      "BENCH net.tx qemu-vfio@1 80\nBENCH net.tx qemu-vfio@2 50\n"
      // Several samples of one round: that round's median.
      "BENCH edu.msi_rtt native@1 10\nBENCH edu.msi_rtt native@1 30\n"
      "BENCH edu.msi_rtt devpass@1 40\nBENCH edu.msi_rtt devpass@1 41\n"
      "BENCH edu.msi_rtt devpass@1 90\n");
  const MetricReport* tx = FindMetricReport(r, "net.tx");
  ASSERT_NE(tx, nullptr);
  const WayRow& dev = tx->ways[1];
  ASSERT_EQ(dev.way, "devpass");
  EXPECT_EQ(dev.stats.n, 3u);
  EXPECT_DOUBLE_EQ(dev.stats.median, 80);
  ASSERT_TRUE(dev.ratio.has_value());
  EXPECT_EQ(dev.ratio->rounds, 2u);
  EXPECT_DOUBLE_EQ(dev.ratio->median, 0.5);
  EXPECT_DOUBLE_EQ(dev.ratio->min, 0.5);
  EXPECT_DOUBLE_EQ(dev.ratio->max, 0.5);
  // devpass against QEMU per round: 100/80 and 50/50.
  ASSERT_TRUE(tx->devpass_vs_qemu.has_value());
  EXPECT_EQ(tx->devpass_vs_qemu->rounds, 2u);
  EXPECT_DOUBLE_EQ(tx->devpass_vs_qemu->min, 1.0);
  EXPECT_DOUBLE_EQ(tx->devpass_vs_qemu->max, 1.25);
  EXPECT_DOUBLE_EQ(tx->devpass_vs_qemu->median, 1.125);
  const MetricReport* msi = FindMetricReport(r, "edu.msi_rtt");
  ASSERT_NE(msi, nullptr);
  EXPECT_DOUBLE_EQ(msi->ways[1].ratio->median, 41.0 / 20.0);
  std::string t = FormatTable(r);
  EXPECT_NE(t.find("devpass vs QEMU vfio-pci: 1.12 (1.00-1.25), 2 rounds"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("0.50x native, 2 rounds"), std::string::npos) << t;
  // One round: no range to give.
  std::string one = FormatTable(
      Build("BENCH net.rtt devpass@1 9\nBENCH net.rtt qemu-vfio@1 10\n"));
  EXPECT_NE(one.find("devpass vs QEMU vfio-pci: 0.90, 1 round\n"),
            std::string::npos)
      << one;
  auto j = ToJson(r);
  EXPECT_EQ(j["metrics"][0]["devpass_vs_qemu"]["with"], "qemu-vfio");
  EXPECT_EQ(j["metrics"][0]["devpass_vs_qemu"]["rounds"], 2);
  EXPECT_DOUBLE_EQ(j["metrics"][0]["ways"][1]["ratio"]["max"].get<double>(),
                   0.5);
}

TEST(BenchReportBuildTest, MissingBaselineGivesNoRatio) {
  Report r = Build(
      "BENCH edu.dma devpass 5\nBENCH edu.dma qemu-vfio 4\n"
      "BENCH list.devices4096 devpass 88\n");
  const MetricReport* dma = FindMetricReport(r, "edu.dma");
  ASSERT_NE(dma, nullptr);
  for (const WayRow& w : dma->ways) EXPECT_FALSE(w.ratio.has_value()) << w.way;
  const MetricReport* list = FindMetricReport(r, "list.devices4096");
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(list->baseline, "");
  EXPECT_FALSE(list->ways[0].ratio.has_value());
  auto j = ToJson(r);
  EXPECT_TRUE(j["metrics"][0]["ways"][0]["ratio"].is_null());
  EXPECT_TRUE(j["metrics"][1]["baseline"].is_null());
}

TEST(BenchReportBuildTest, DevpassVsQemu) {
  Report r = Build(
      "BENCH edu.msi_rtt devpass 30\nBENCH edu.msi_rtt qemu-vfio 40\n"
      "BENCH launch.userspace devpass 9\nBENCH launch.userspace qemu 12\n"
      "BENCH net.tx devpass 9\nBENCH net.tx qemu 12\n");
  const MetricReport* msi = FindMetricReport(r, "edu.msi_rtt");
  ASSERT_TRUE(msi && msi->devpass_vs_qemu);
  EXPECT_DOUBLE_EQ(msi->devpass_vs_qemu->median, 0.75);
  const MetricReport* launch = FindMetricReport(r, "launch.userspace");
  ASSERT_TRUE(launch && launch->devpass_vs_qemu);
  EXPECT_DOUBLE_EQ(launch->devpass_vs_qemu->median, 0.75);
  EXPECT_EQ(launch->baseline, "qemu");
  EXPECT_DOUBLE_EQ(launch->ways[0].ratio->median, 0.75);  // devpass first
  // net.tx sets devpass against qemu-vfio, which has no samples here.
  const MetricReport* tx = FindMetricReport(r, "net.tx");
  ASSERT_NE(tx, nullptr);
  EXPECT_FALSE(tx->devpass_vs_qemu.has_value());
  auto j = ToJson(r);
  ASSERT_EQ(j["metrics"].size(), 3u);
  EXPECT_EQ(j["metrics"][0]["metric"], "net.tx");
  EXPECT_FALSE(j["metrics"][0].contains("devpass_vs_qemu"));
  EXPECT_DOUBLE_EQ(j["metrics"][1]["devpass_vs_qemu"]["median"].get<double>(),
                   0.75);
}

TEST(BenchReportBuildTest, WaysInDisplayOrderThenAlphabetically) {
  Report r = Build(
      "BENCH net.tx zeta 1\nBENCH net.tx virtio 1\nBENCH net.tx alpha 1\n"
      "BENCH net.tx qemu-emulated 1\nBENCH net.tx devpass 1\n"
      "BENCH net.tx qemu-vfio 1\nBENCH net.tx native 1\n"
      "BENCH net.tx devpass-hugepages 1\n"
      "BENCH dmamap.per_gib 2m 1\nBENCH dmamap.per_gib 4k 4\n");
  std::vector<std::string> ways;
  for (const WayRow& w : r.metrics[0].ways) ways.push_back(w.way);
  EXPECT_EQ(ways, (std::vector<std::string>{
                      "native", "devpass", "devpass-hugepages", "qemu-vfio",
                      "qemu-emulated", "virtio", "alpha", "zeta"}));
  EXPECT_EQ(r.metrics[0].ways[0].name, "native (lab host driver)");
  EXPECT_EQ(r.metrics[0].ways[6].name, "alpha");
  const MetricReport* map = FindMetricReport(r, "dmamap.per_gib");
  ASSERT_NE(map, nullptr);
  EXPECT_EQ(map->ways[0].way, "4k");
  EXPECT_EQ(map->ways[1].name, "2 MiB huge pages");
  EXPECT_DOUBLE_EQ(map->ways[1].ratio->median, 0.25);
  // A small ratio keeps its digits in the table.
  std::string t =
      FormatTable(Build("BENCH dmamap.per_gib 4k 1.92\n"
                        "BENCH dmamap.per_gib 2m 0.031\n"));
  EXPECT_NE(t.find("0.016x 4k"), std::string::npos) << t;
}

TEST(BenchReportBuildTest, UnknownMetricsComeAfterTheKnownOnes) {
  Report r = Build(
      "BENCH aaa.custom devpass 3\nBENCH list.devices4096 devpass 88\n"
      "BENCH net.tx native 1\nBENCH zzz devpass 1\n");
  ASSERT_EQ(r.metrics.size(), 4u);
  EXPECT_EQ(r.metrics[0].metric, "net.tx");
  EXPECT_EQ(r.metrics[1].metric, "list.devices4096");
  EXPECT_EQ(r.metrics[2].metric, "aaa.custom");
  EXPECT_EQ(r.metrics[3].metric, "zzz");
  EXPECT_EQ(r.metrics[2].unit, "?");
  EXPECT_FALSE(r.metrics[2].better.has_value());
  EXPECT_EQ(r.metrics[2].baseline, "");
  auto j = ToJson(r);
  EXPECT_EQ(j["metrics"][2]["unit"], "?");
  EXPECT_TRUE(j["metrics"][2]["better"].is_null());
  EXPECT_TRUE(j["metrics"][2]["ways"][0]["ratio"].is_null());
}

TEST(BenchReportJsonTest, Shape) {
  Report r = BuildReport(Parse("BENCH net.rtt native 10\n"
                               "BENCH net.rtt native 14\n"
                               "BENCH net.rtt devpass 20\n"),
                         {"a.log", "b.log"},
                         {{"date", "2025-01-02"}, {"commit", "abc123"}});
  auto j = ToJson(r);
  EXPECT_EQ(j["disclaimer"], kDisclaimer);
  EXPECT_EQ(j["sources"], nlohmann::json({"a.log", "b.log"}));
  EXPECT_EQ(j["meta"]["date"], "2025-01-02");
  EXPECT_EQ(j["meta"]["commit"], "abc123");
  EXPECT_EQ(j["samples"], 3);
  ASSERT_EQ(j["metrics"].size(), 1u);
  const auto& m = j["metrics"][0];
  EXPECT_EQ(m["metric"], "net.rtt");
  EXPECT_EQ(m["title"], "network: TCP round trip (1 byte)");
  EXPECT_EQ(m["unit"], "us");
  EXPECT_EQ(m["better"], "lower");
  EXPECT_EQ(m["baseline"], "native");
  ASSERT_EQ(m["ways"].size(), 2u);
  const auto& native = m["ways"][0];
  EXPECT_EQ(native["way"], "native");
  EXPECT_EQ(native["name"], "native (lab host driver)");
  EXPECT_EQ(native["n"], 2);
  EXPECT_DOUBLE_EQ(native["median"].get<double>(), 12);
  EXPECT_DOUBLE_EQ(native["min"].get<double>(), 10);
  EXPECT_DOUBLE_EQ(native["max"].get<double>(), 14);
  EXPECT_DOUBLE_EQ(native["ratio"]["median"].get<double>(), 1);
  EXPECT_DOUBLE_EQ(m["ways"][1]["ratio"]["median"].get<double>(), 20.0 / 12.0);
  EXPECT_EQ(m["ways"][1]["ratio"]["rounds"], 0);
  EXPECT_FALSE(ToJson(Build("BENCH a b 1\n")).contains("meta"));
}

TEST(BenchReportTableTest, DisclaimerMetaAndRows) {
  Report r = BuildReport(Parse("BENCH net.tx native 100\n"
                               "BENCH net.tx devpass 62\n"
                               "BENCH net.tx qemu-vfio 50\n"
                               "BENCH net.rtt devpass 31\n"),
                         {"run.log"}, {{"lab CPU", "TCG"}});
  std::string t = FormatTable(r);
  auto has = [&t](std::string_view s) {
    return t.find(s) != std::string::npos;
  };
  // The disclaimer and the ratio note are wrapped; their text is whole.
  std::string flat = t;
  std::replace(flat.begin(), flat.end(), '\n', ' ');
  EXPECT_NE(flat.find(kDisclaimer), std::string::npos) << t;
  EXPECT_NE(flat.find(kRatioNote), std::string::npos) << t;
  EXPECT_NE(flat.find("a ratio above 1 means slower"), std::string::npos);
  EXPECT_LT(t.find("These figures"), t.find("network:"));
  EXPECT_TRUE(has("lab CPU: TCG\n")) << t;
  EXPECT_TRUE(has("Input: run.log (4 samples)")) << t;
  EXPECT_TRUE(has("network: bulk TCP, guest -> peer [MB/s] (higher is better)"))
      << t;
  EXPECT_TRUE(has("network: TCP round trip (1 byte) [µs] (lower is better)"))
      << t;
  EXPECT_TRUE(has("0.62x native")) << t;
  EXPECT_TRUE(has("(baseline)")) << t;
  EXPECT_TRUE(has("(no native samples)")) << t;
  EXPECT_TRUE(has("devpass vs QEMU vfio-pci: 1.24, medians of separate runs"))
      << t;
  // Rows: name, then median, min, max, n, ratio, aligned.
  size_t row = t.find("  devpass passthrough");
  ASSERT_NE(row, std::string::npos) << t;
  std::string line = t.substr(row, t.find('\n', row) - row);
  EXPECT_NE(line.find("62"), std::string::npos) << line;
  EXPECT_NE(line.find("0.62"), std::string::npos) << line;
  size_t native = t.find("  native (lab host driver)");
  ASSERT_NE(native, std::string::npos);
  std::string nline = t.substr(native, t.find('\n', native) - native);
  EXPECT_EQ(nline.find("1.00"), line.find("0.62")) << nline << "\n" << line;
}

TEST(BenchReportTableTest, NumberFormatting) {
  EXPECT_EQ(FormatNumber(1180.4), "1180");
  EXPECT_EQ(FormatNumber(56.74), "56.7");
  EXPECT_EQ(FormatNumber(3.14159), "3.14");
  EXPECT_EQ(FormatNumber(0.1234), "0.123");
  EXPECT_EQ(FormatNumber(0), "0");
}

}  // namespace
}  // namespace devpass::bench
