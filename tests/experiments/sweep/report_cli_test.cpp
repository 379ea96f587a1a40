// Tests of the `qwenqat report` subcommand through the built binary (skipped
// when the qwenqat binary has not been built yet): table on stdout, --json,
// --merge of shard files, and errors for bad input.
#include <gtest/gtest.h>

#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "experiments/sweep/sweep_results.h"
#include "tests/util/test_util.h"

namespace qwenqat::experiments {
namespace {

#define REQUIRE_QWENQAT_BINARY()                                                  \
  if (!std::filesystem::exists(QWENQAT_BINARY)) {                                 \
    GTEST_SKIP() << "the qwenqat binary is not built (" << QWENQAT_BINARY << ")"; \
  }

std::string rows_jsonl(const std::vector<std::string>& methods, int bits) {
  std::string out;
  for (const auto& m : methods) {
    SweepRow r;
    r.point.method = m;
    r.point.scheme = {bits, 32, true, 0};
    r.point.id = m == "fp" ? "fp" : m + "-" + r.point.scheme.name() + "-mp_none";
    r.metrics.size_bytes = m == "fp" ? 4000000 : 1000000 * bits / 4;
    r.metrics.bits_per_weight = m == "fp" ? 16 : bits + 0.5;
    r.metrics.perplexity = m == "fp" ? 4.0 : m == "ptq" ? 6.0 : 5.0;
    out += row_to_json(r).dump() + "\n";
  }
  return out;
}

TEST(ReportCli, MergesAndPrintsTable) {
  REQUIRE_QWENQAT_BINARY();
  testing::TempDir dir;
  write_file_atomic(dir / "a.jsonl", rows_jsonl({"fp", "ptq"}, 4));
  write_file_atomic(dir / "b.jsonl", rows_jsonl({"ptq", "qat"}, 4));
  std::string out;
  const std::string base = "report --results " + (dir / "out").string() + " --no-plot";
  ASSERT_EQ(testing::run_qwenqat(base + " --merge " + (dir / "a.jsonl").string() + " " +
                                     (dir / "b.jsonl").string(),
                                 &out),
            0)
      << out;
  // (5 - 6) / (4 - 6) = 50% recovery on perplexity.
  EXPECT_NE(out.find("| w4g32 | QAT (0 steps, seed 0) | 1.00 | 4.50 | - | 5.000 | - | - | 50% (ppl) |"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("merged 3 rows (1 duplicates dropped)"), std::string::npos) << out;
  ASSERT_EQ(testing::run_qwenqat(base + " --json", &out), 0) << out;
  const auto start = out.find('{');
  ASSERT_NE(start, std::string::npos) << out;
  Json j = parse_json(out.substr(start), "report --json output");
  EXPECT_EQ(j["rows"].size(), 3u);
  EXPECT_NEAR(j["rows"][2]["recovery"].get<double>(), 0.5, 1e-12);
}

TEST(ReportCli, BadInput) {
  REQUIRE_QWENQAT_BINARY();
  testing::TempDir dir;
  std::string out;
  EXPECT_EQ(testing::run_qwenqat("report --results " + (dir / "none").string(), &out), 1);
  EXPECT_NE(out.find("results.jsonl does not exist"), std::string::npos) << out;
  write_file_atomic(dir / "results.jsonl", "{\"point_id\": 3}\n{}\n");
  EXPECT_EQ(testing::run_qwenqat("report --results " + dir.path().string(), &out), 1);
  EXPECT_NE(out.find("point_id"), std::string::npos) << out;
  write_file_atomic(dir / "results.jsonl", rows_jsonl({"fp"}, 4));
  EXPECT_EQ(testing::run_qwenqat("report --results " + dir.path().string() + " --metric bleu",
                                 &out),
            1);
  EXPECT_NE(out.find("--metric"), std::string::npos) << out;
  EXPECT_NE(testing::run_qwenqat("report", &out), 0);  // --results is required
}

}  // namespace
}  // namespace qwenqat::experiments
