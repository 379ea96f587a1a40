// Tests of the sweep loop with a fake PointRunner (skip finished points on
// re-run, crash then re-run completes only the missing ones, sharded runs
// merged), and of the results files (JSONL/CSV round trip, merge dedupe).
#include "experiments/sweep/sweep_runner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "tests/util/test_util.h"

namespace qwenqat::experiments {
namespace {

SweepSpec small_sweep() {
  return parse_sweep(Json::parse(R"({"base_model": "m",
    "grid": {"bits": [4, 2], "group_size": [32], "methods": ["ptq", "qat"],
             "train_steps": [10], "seeds": [0, 1]}})"),
                     "sweep.json");
}  // 1 fp + 2 schemes x (1 ptq + 2 qat seeds) = 7 points

// Size and perplexity derived from the point so that rows are checkable.
class FakeRunner : public PointRunner {
 public:
  std::vector<std::string> ran;
  int fail_at = -1;  // 0-based call that throws
  PointMetrics run(const SweepPoint& p, const SweepSpec&, const std::filesystem::path& dir) override {
    EXPECT_TRUE(std::filesystem::is_directory(dir));
    if (int(ran.size()) == fail_at) {
      fail_at = -1;
      fail("fake runner crashed on ", p.id);
    }
    ran.push_back(p.id);
    PointMetrics m;
    const int bits = p.method == "fp" ? 16 : p.scheme.bits;
    m.size_bytes = 1000000 * bits;
    m.bits_per_weight = bits;
    m.perplexity = 10.0 + (16 - bits) + (p.method == "qat" ? -1.0 : 0.0);
    m.extra = {{"dir", dir.filename().string()}};
    return m;
  }
};

SweepRunOptions quiet(Shard shard = {}) {
  SweepRunOptions o;
  o.shard = shard;
  o.progress = false;
  return o;
}

TEST(SweepRunner, RerunSkipsFinishedPoints) {
  testing::TempDir dir;
  FakeRunner runner;
  auto r1 = run_sweep(small_sweep(), runner, dir.path(), quiet());
  EXPECT_EQ(r1.shard_points, 7);
  EXPECT_EQ(r1.ran, 7);
  EXPECT_EQ(r1.skipped, 0);
  FakeRunner again;
  auto r2 = run_sweep(small_sweep(), again, dir.path(), quiet());
  EXPECT_EQ(r2.ran, 0);
  EXPECT_EQ(r2.skipped, 7);
  EXPECT_TRUE(again.ran.empty());
  LoadedRows rows = load_rows(dir / kResultsJsonl);
  ASSERT_EQ(rows.rows.size(), 7u);
  EXPECT_EQ(rows.rows[1].point.id, "ptq-w4g32-mp_none");
  EXPECT_EQ(rows.rows[1].metrics.size_bytes, 4000000);
  EXPECT_EQ(*rows.rows[1].metrics.perplexity, 22.0);
  EXPECT_EQ(rows.rows[1].metrics.extra["dir"], "ptq-w4g32-mp_none");
  EXPECT_FALSE(rows.rows[1].metrics.accuracy.has_value());
  // The CSV has a header and one line per row.
  const std::string csv = read_file(dir / kResultsCsv);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 8);
  EXPECT_EQ(csv.rfind("point_id,method,scheme,bits", 0), 0u);
}

TEST(SweepRunner, CrashThenRerunCompletesOnlyMissing) {
  testing::TempDir dir;
  FakeRunner crashing;
  crashing.fail_at = 3;
  EXPECT_THROW(run_sweep(small_sweep(), crashing, dir.path(), quiet()), Error);
  EXPECT_EQ(load_rows(dir / kResultsJsonl).rows.size(), 3u);
  // The process died while writing the next row: a partial line.
  { std::ofstream(dir / kResultsJsonl, std::ios::app) << R"({"point_id": "qat-w4g3)"; }
  FakeRunner runner;
  auto r = run_sweep(small_sweep(), runner, dir.path(), quiet());
  EXPECT_EQ(r.skipped, 3);
  EXPECT_EQ(r.ran, 4);
  ASSERT_EQ(runner.ran.size(), 4u);
  EXPECT_EQ(runner.ran[0], "qat-w4g32-mp_none-steps10-seed1");
  LoadedRows rows = load_rows(dir / kResultsJsonl);
  EXPECT_TRUE(rows.warnings.empty());
  ASSERT_EQ(rows.rows.size(), 7u);
  std::set<std::string> ids;
  for (const auto& row : rows.rows) ids.insert(row.point.id);
  EXPECT_EQ(ids.size(), 7u);
}

TEST(SweepRunner, KeepGoingRecordsFailures) {
  testing::TempDir dir;
  FakeRunner runner;
  runner.fail_at = 0;
  auto o = quiet();
  o.keep_going = true;
  auto r = run_sweep(small_sweep(), runner, dir.path(), o);
  ASSERT_EQ(r.failed, std::vector<std::string>{"fp"});
  EXPECT_EQ(r.ran, 6);
  FakeRunner retry;
  EXPECT_EQ(run_sweep(small_sweep(), retry, dir.path(), quiet()).ran, 1);
  EXPECT_EQ(retry.ran, std::vector<std::string>{"fp"});
}

TEST(SweepRunner, ShardsMergeIntoTheWholeGrid) {
  testing::TempDir dir;
  std::vector<std::filesystem::path> shard_dirs;
  for (int64_t i = 0; i < 3; ++i) {
    FakeRunner runner;
    shard_dirs.push_back(dir / ("shard" + std::to_string(i)));
    auto r = run_sweep(small_sweep(), runner, shard_dirs.back(), quiet({i, 3}));
    EXPECT_EQ(r.ran, i == 0 ? 3 : 2);  // 7 points: indices 0,3,6 / 1,4 / 2,5
  }
  // Shard 1 is merged twice (as a directory and as its file): duplicates dropped.
  auto m = merge_results({shard_dirs[0], shard_dirs[1], shard_dirs[2],
                          shard_dirs[1] / kResultsJsonl},
                         dir / "merged");
  EXPECT_EQ(m.rows, 7);
  EXPECT_EQ(m.duplicates, 2);
  EXPECT_TRUE(m.warnings.empty());
  LoadedRows merged = load_rows(dir / "merged" / kResultsJsonl);
  std::set<std::string> ids, grid;
  for (const auto& r : merged.rows) ids.insert(r.point.id);
  for (const auto& p : expand_sweep(small_sweep())) grid.insert(p.id);
  EXPECT_EQ(ids, grid);
  EXPECT_TRUE(std::filesystem::exists(dir / "merged" / kResultsCsv));
  // The merged directory is complete: a full run there has nothing to do.
  FakeRunner idle;
  EXPECT_EQ(run_sweep(small_sweep(), idle, dir / "merged", quiet()).ran, 0);
  // A conflicting copy of a point keeps the first and warns.
  SweepRow changed = merged.rows[0];
  changed.metrics.perplexity = 99.0;
  write_file_atomic(dir / "other.jsonl", row_to_json(changed).dump() + "\n");
  auto c = merge_results({dir / "merged", dir / "other.jsonl"}, dir / "merged2");
  EXPECT_EQ(c.rows, 7);
  EXPECT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(*load_rows(dir / "merged2" / kResultsJsonl).rows[0].metrics.perplexity, 99.0);
  EXPECT_THROW(merge_results({dir / "missing"}, dir / "m3"), Error);
}

TEST(SweepResults, RowRoundTripAndBadRows) {
  SweepRow r;
  r.point = expand_sweep(small_sweep())[2];
  r.metrics.size_bytes = 123;
  r.metrics.bits_per_weight = 4.5;
  r.metrics.accuracy = proportion_with_ci(30, 100);
  r.metrics.kl_mean = 0.25;
  r.metrics.extra = {{"note", "a, \"quoted\" value"}};
  SweepRow back = row_from_json(row_to_json(r), "x");
  EXPECT_EQ(back.point.id, r.point.id);
  EXPECT_EQ(back.point.scheme, r.point.scheme);
  EXPECT_EQ(back.point.seed, r.point.seed);
  EXPECT_NEAR(back.metrics.accuracy->value, 0.3, 1e-12);
  EXPECT_NEAR(back.metrics.accuracy->ci95.low, r.metrics.accuracy->ci95.low, 1e-12);
  EXPECT_FALSE(back.metrics.perplexity.has_value());
  EXPECT_EQ(*back.metrics.kl_mean, 0.25);
  // CSV quoting of a field with a comma and quotes.
  r.point.mixed_precision = "x,\"y\"";
  const std::string csv = rows_to_csv({r});
  EXPECT_NE(csv.find("\"x,\"\"y\"\"\""), std::string::npos) << csv;
  Json j = row_to_json(r);
  j["method"] = "gptq";
  EXPECT_THROW(row_from_json(j, "x"), Error);
  j = row_to_json(r);
  j.erase("size_bytes");
  EXPECT_THROW(row_from_json(j, "x"), Error);
  j = row_to_json(r);
  j["perplexity"] = "high";
  EXPECT_THROW(row_from_json(j, "x"), Error);
  j = row_to_json(r);
  j["accuracy"] = 1.5;
  EXPECT_THROW(row_from_json(j, "x"), Error);
}

TEST(SweepResults, MetricsFromEvaluations) {
  PointMetrics m;
  EvalSummary empty;
  EXPECT_THROW(set_generation_metrics(m, empty), Error);
  EvalSummary s;
  s.problems = 10;
  s.accuracy = proportion_with_ci(3, 10);
  set_generation_metrics(m, s);
  EXPECT_NEAR(m.accuracy->value, 0.3, 1e-12);
  TeacherForcedAccumulator acc;
  EXPECT_THROW(set_teacher_forced_metrics(m, acc), Error);
  // Two positions, vocab 2; reference uniform, model [0, ln 3] on row 0: the
  // scored token (id 1) has p = 3/4 -> perplexity 4/3; KL(U || [1/4, 3/4]) =
  // 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.143841; argmax 0 vs 1 -> top-1 0.
  const float ln3 = float(std::log(3.0));
  std::vector<float> q = {0.0f, ln3, 0.0f, 0.0f}, ref = {0.0f, 0.0f, 0.0f, 0.0f};
  acc.add({"s", {0, 1}, 1}, q, ref, 2);
  set_teacher_forced_metrics(m, acc);
  EXPECT_NEAR(*m.perplexity, 4.0 / 3.0, 1e-6);
  EXPECT_NEAR(*m.kl_mean, 0.1438410, 1e-6);
  EXPECT_EQ(*m.top1_agreement, 0.0);
}

}  // namespace
}  // namespace qwenqat::experiments
