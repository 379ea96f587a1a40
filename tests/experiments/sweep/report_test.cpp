// Tests of the sweep report: recovery against hand-computed values, the
// Markdown table, the Pareto front, the gnuplot plot files, and the
// `qwenqat report` command's library entry point.
#include "experiments/sweep/report.h"

#include <gtest/gtest.h>

#include <sstream>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "experiments/sweep/plot.h"
#include "experiments/sweep/report_commands.h"
#include "tests/util/test_util.h"

namespace qwenqat::experiments {
namespace {

SweepRow make_row(const std::string& method, int bits, int64_t size, std::optional<double> acc,
                  std::optional<double> ppl, std::optional<double> kl = std::nullopt) {
  SweepRow r;
  r.point.method = method;
  r.point.scheme = {bits, 32, true, 0};
  r.point.id = method == "fp" ? "fp" : method + "-" + r.point.scheme.name();
  if (method == "qat") r.point.train_steps = 100;
  r.metrics.size_bytes = size;
  r.metrics.bits_per_weight = method == "fp" ? 16 : bits + 0.5;
  if (acc) r.metrics.accuracy = proportion_with_ci(*acc * 200, 200);
  r.metrics.perplexity = ppl;
  r.metrics.kl_mean = kl;
  return r;
}

std::vector<SweepRow> example_rows() {
  return {make_row("qat", 4, 1000000, 0.60, 5.0, 0.05),
          make_row("ptq", 4, 1000000, 0.50, 6.0, 0.20), make_row("fp", 16, 4000000, 0.70, 4.0),
          make_row("ptq", 2, 600000, std::nullopt, 12.0, 1.0),
          make_row("qat", 2, 600000, std::nullopt, 9.0, 0.5)};
}

TEST(Report, RecoveryHandComputed) {
  const auto rows = example_rows();
  // 4-bit on accuracy: (0.60 - 0.50) / (0.70 - 0.50) = 0.5.
  auto r4 = recovery_of(rows[0], rows);
  ASSERT_TRUE(r4.has_value());
  EXPECT_EQ(r4->metric, "accuracy");
  EXPECT_NEAR(r4->value, 0.5, 1e-12);
  // 2-bit has no accuracy: KL with fp = 0: (0.5 - 1.0) / (0 - 1.0) = 0.5.
  auto r2 = recovery_of(rows[4], rows);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(r2->metric, "kl");
  EXPECT_NEAR(r2->value, 0.5, 1e-12);
  // Without KL it falls back to perplexity: (9 - 12) / (4 - 12) = 0.375.
  auto ppl_rows = rows;
  for (auto& r : ppl_rows) r.metrics.kl_mean.reset();
  auto rp = recovery_of(ppl_rows[4], ppl_rows);
  ASSERT_TRUE(rp.has_value());
  EXPECT_EQ(rp->metric, "perplexity");
  EXPECT_NEAR(rp->value, 0.375, 1e-12);
  // Undefined for ptq/fp rows, without a PTQ row of the scheme, or a zero gap.
  EXPECT_FALSE(recovery_of(rows[1], rows).has_value());
  EXPECT_FALSE(recovery_of(rows[2], rows).has_value());
  std::vector<SweepRow> no_ptq = {rows[0], rows[2]};
  EXPECT_FALSE(recovery_of(rows[0], no_ptq).has_value());
  auto zero_gap = rows;
  zero_gap[1].metrics.accuracy = zero_gap[2].metrics.accuracy;
  zero_gap[1].metrics.perplexity = zero_gap[2].metrics.perplexity;
  EXPECT_FALSE(recovery_of(zero_gap[0], zero_gap).has_value());
}

TEST(Report, MarkdownTable) {
  const std::string md = markdown_table(example_rows());
  std::istringstream in(md);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 7u);  // header, rule, 5 rows
  // fp first, then schemes in order of first appearance with ptq before qat.
  EXPECT_EQ(lines[2].rfind("| full precision | - | 4.00 | 16.00 | 70.0% (", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3].rfind("| w4g32 | PTQ (RTN) | 1.00 | 4.50 | 50.0% (", 0), 0u) << lines[3];
  EXPECT_NE(lines[4].find("| QAT (100 steps, seed 0) |"), std::string::npos) << lines[4];
  EXPECT_NE(lines[4].find("| 5.000 | 0.05 | - | 50% (acc) |"), std::string::npos) << lines[4];
  EXPECT_NE(lines[6].find("| 9.000 | 0.5 | - | 50% (KL) |"), std::string::npos) << lines[6];
  // Wilson interval of 120/200 (hand, z = 1.96: center 0.598116, half 0.067280 -> 0.5308-0.6654).
  EXPECT_NE(lines[4].find("60.0% (53.1-66.5)"), std::string::npos) << lines[4];
  Json j = table_json(example_rows());
  ASSERT_EQ(j.size(), 5u);
  EXPECT_EQ(j[0]["method"], "fp");
  EXPECT_NEAR(j[2]["recovery"].get<double>(), 0.5, 1e-12);
}

TEST(Report, ParetoFront) {
  // (size, accuracy): A(1, 50) B(2, 40) dominated by A, C(2, 60), D(4, 60)
  // dominated by C (same accuracy, larger), E(4, 70), F(1, 50) duplicate of A.
  std::vector<XY> pts = {{1, 50}, {2, 40}, {2, 60}, {4, 60}, {4, 70}, {1, 50}};
  EXPECT_EQ(pareto_front(pts, true), (std::vector<size_t>{0, 5, 2, 4}));
  // Lower is better (perplexity): (1, 9), (2, 7), (3, 8) dominated, (4, 5).
  std::vector<XY> ppl = {{3, 8}, {1, 9}, {4, 5}, {2, 7}};
  EXPECT_EQ(pareto_front(ppl, false), (std::vector<size_t>{1, 3, 2}));
  std::vector<XY> with_nan = {{1, NAN}, {2, 3}};
  EXPECT_EQ(pareto_front(with_nan, true), std::vector<size_t>{1});
  EXPECT_TRUE(pareto_front({}, true).empty());
}

bool have_gnuplot() { return std::system("gnuplot --version > /dev/null 2>&1") == 0; }

TEST(Report, PlotFiles) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (apt-get install gnuplot-nox)";
  testing::TempDir dir;
  const auto rows = example_rows();
  EXPECT_EQ(choose_plot_metric(rows, "auto"), PlotMetric::kAccuracy);
  EXPECT_THROW(choose_plot_metric(rows, "bleu"), Error);
  PlotFiles f = write_plot(rows, PlotMetric::kPerplexity, dir.path());
  // Perplexity front: 2-bit QAT (0.6 MB, 9), 4-bit QAT (1 MB, 5), fp (4 MB, 4).
  EXPECT_EQ(f.pareto_ids, (std::vector<std::string>{"qat-w2g32", "qat-w4g32", "fp"}));
  const std::string png = read_file(f.png);
  ASSERT_GT(png.size(), 1000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  const std::string svg = read_file(f.svg);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(read_file(f.script).find("full precision (reference)"), std::string::npos);
  // KL: a log y axis when every quantized KL is positive (fp, KL 0, left off it).
  std::vector<SweepRow> kl_rows;
  for (const auto& r : rows)
    if (r.metrics.kl_mean || r.point.method == "fp") kl_rows.push_back(r);
  ASSERT_GE(kl_rows.size(), 2u);
  const PlotFiles kl = write_plot(kl_rows, PlotMetric::kKl, dir.path(), "kl");
  EXPECT_NE(read_file(kl.script).find("set logscale y"), std::string::npos);
  EXPECT_EQ(read_file(kl.script).find("full precision (reference)"), std::string::npos);
  // ... nor its point (KL 0): no plot clause without a point gnuplot can draw.
  EXPECT_EQ(read_file(kl.script).find("title 'full precision'"), std::string::npos);
  EXPECT_NE(read_file(f.script).find("title 'full precision'"), std::string::npos);
  EXPECT_EQ(read_file(f.script).find("set logscale y"), std::string::npos);  // perplexity: linear
  // Only rows with the metric are plotted; none with it is an error.
  std::vector<SweepRow> no_acc = {rows[3], rows[4]};
  EXPECT_THROW(write_plot(no_acc, PlotMetric::kAccuracy, dir.path()), Error);
}

TEST(Report, RunReportWritesTableAndPlot) {
  testing::TempDir dir;
  std::string jsonl;
  for (const auto& r : example_rows()) jsonl += row_to_json(r).dump() + "\n";
  write_file_atomic(dir / "shard0.jsonl", jsonl);
  ReportOptions o;
  o.results_dir = dir / "out";
  o.merge = {dir / "shard0.jsonl"};
  o.plot = have_gnuplot();
  o.json = true;
  ::testing::internal::CaptureStdout();
  run_report(o);
  const std::string out = ::testing::internal::GetCapturedStdout();
  Json j = Json::parse(out);
  EXPECT_EQ(j["rows"].size(), 5u);
  EXPECT_NE(read_file(dir / "out" / "results.md").find("| w2g32 | QAT"), std::string::npos);
  if (o.plot) {
    EXPECT_TRUE(std::filesystem::exists(dir / "out" / "accuracy_vs_size.png"));
  }
  ReportOptions missing;
  missing.results_dir = dir / "nowhere";
  EXPECT_THROW(run_report(missing), Error);
}

}  // namespace
}  // namespace qwenqat::experiments
