// `qwenqat bench` as llama-bench: lists of sizes give every combination on one
// loaded model, in rounds; the figures per configuration (means, sds, every
// round's), the ratio to batch 1 within each round, and the text / CSV forms.
#include "inference/bench.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "data/util/check.h"
#include "tests/inference/engine_test_util.h"
#include "tests/util/test_util.h"

namespace qwenqat::engine {
namespace {

using qwenqat::testing::error_of;

// Options of a small random-weight model (the tiny test config, w4g32).
struct TinyBench {
  qwenqat::testing::TempDir dir;
  BenchOptions o;
  TinyBench() {
    std::ofstream(dir / "config.json") << testing::tiny_config().to_json().dump();
    o.random_config = (dir / "config.json").string();
    o.bandwidth_mb = 0;
    o.threads = {1};
    o.prompt_tokens = {3};
    o.gen_tokens = {2};
  }
};

int64_t lines_of(const std::string& s) {
  return static_cast<int64_t>(std::count(s.begin(), s.end(), '\n'));
}

TEST(Bench, EveryCombinationInRoundsWithTheirStatistics) {
  TinyBench t;
  t.o.threads = {1, 2};
  t.o.act_quant = {"none", "q8"};
  t.o.kv_cache = {"f32", "f16"};
  t.o.batch = {1, 3};
  t.o.prompt_tokens = {3, 5};
  t.o.gen_tokens = {2};
  t.o.repetitions = 3;
  const Json r = run_bench(t.o);
  EXPECT_FALSE(r.contains("decode_tokens_per_s"));  // several configurations: only in "runs"
  const Json& runs = r.at("runs");
  ASSERT_EQ(runs.size(), 32u);
  int i = 0;
  for (int threads : {1, 2})
    for (const char* act : {"none", "q8"})
      for (const char* kv : {"f32", "f16"})
        for (int64_t batch : {1, 3})
          for (int64_t prompt : {3, 5}) {
            const Json& run = runs[i++];
            EXPECT_EQ(run.at("threads").get<int>(), threads);
            EXPECT_EQ(run.at("act_quant").get<std::string>(), act);
            EXPECT_EQ(run.at("kv_cache").get<std::string>(), kv);
            EXPECT_EQ(run.at("batch").get<int64_t>(), batch);
            EXPECT_EQ(run.at("prompt_tokens").get<int64_t>(), prompt);
            EXPECT_EQ(run.at("gen_tokens").get<int64_t>(), 2);
            const Json& rounds = run.at("rounds");
            ASSERT_EQ(rounds.size(), 3u);
            double sum = 0.0, ss = 0.0;
            for (const Json& x : rounds) sum += x.at("decode_tokens_per_s").get<double>();
            const double mean = sum / 3;
            for (const Json& x : rounds)
              ss += std::pow(x.at("decode_tokens_per_s").get<double>() - mean, 2);
            EXPECT_NEAR(run.at("decode_tokens_per_s").get<double>(), mean, 1e-9 * mean);
            EXPECT_NEAR(run.at("decode_tokens_per_s_sd").get<double>(), std::sqrt(ss / 2),
                        1e-9 * mean);
            EXPECT_GT(run.at("prefill_tokens_per_s").get<double>(), 0.0);
            // The batch-1 run of the same threads, settings and sizes, round by round.
            const Json& one = runs[i - 1 - (batch == 3 ? 2 : 0)];
            ASSERT_EQ(one.at("batch").get<int64_t>(), 1);
            double ratio = 0.0;
            for (size_t k = 0; k < 3; ++k)
              ratio += rounds[k].at("decode_tokens_per_s").get<double>() /
                       one.at("rounds")[k].at("decode_tokens_per_s").get<double>() / 3;
            EXPECT_NEAR(run.at("decode_vs_batch1").get<double>(), ratio, 1e-12 * ratio);
            if (batch == 1) {
              EXPECT_EQ(run.at("decode_vs_batch1").get<double>(), 1.0);
            }
          }
  // The text: a table of the 32 configurations (header, rule, rows), mean ± sd.
  const std::string text = bench_text(r);
  EXPECT_NE(text.find("× batch 1"), std::string::npos) << text;
  EXPECT_NE(text.find(" ± "), std::string::npos) << text;
  EXPECT_EQ(lines_of(text.substr(text.find("| threads"))), 2 + 32 + 2) << text;  // + blank, RSS
  // The CSV: a header and one line per configuration, 14 fields each.
  const std::string csv = bench_csv(r);
  ASSERT_EQ(lines_of(csv), 33) << csv;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);)
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 13) << line;
  EXPECT_EQ(csv.rfind("threads,act_quant,kv_cache,batch,prompt_tokens,gen_tokens,rounds,", 0), 0u);
  EXPECT_NE(csv.find("\n2,q8,f16,3,5,2,3,"), std::string::npos) << csv;  // the last configuration
}

TEST(Bench, OneConfigurationKeepsItsFiguresAtTheTop) {
  TinyBench t;
  t.o.batch = {2};
  const Json r = run_bench(t.o);
  ASSERT_EQ(r.at("runs").size(), 1u);
  for (const auto& [key, value] : r.at("runs")[0].items()) EXPECT_EQ(r.at(key), value) << key;
  EXPECT_FALSE(r.at("runs")[0].contains("decode_vs_batch1"));  // no batch-1 run
  const std::string text = bench_text(r);
  EXPECT_NE(text.find("decode           "), std::string::npos) << text;
  EXPECT_EQ(text.find("| threads"), std::string::npos) << text;
  EXPECT_EQ(lines_of(bench_csv(r)), 2);
}

TEST(Bench, BadListsAndOptionsNameTheirFlag) {
  TinyBench t;
  auto bad = t.o;
  bad.batch = {};
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("--batch needs at least one value"),
            std::string::npos);
  bad = t.o;
  bad.batch = {1, 0};
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("--batch must be >= 1, got 0"),
            std::string::npos);
  bad = t.o;
  bad.threads = {2, 0};
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("hardware threads"), std::string::npos);
  bad = t.o;
  bad.gen_tokens = {-1};
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("--gen-tokens"), std::string::npos);
  bad = t.o;
  bad.prompt_tokens = {3, 200};  // the tiny config's context is 128
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("exceed the model's context of 128"),
            std::string::npos);
  bad = t.o;
  bad.kv_cache = {"f16", "int8"};
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("--kv-cache"), std::string::npos);
  bad = t.o;
  bad.act_quant = {};
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("--act-quant needs at least one value"),
            std::string::npos);
  bad = t.o;
  bad.repetitions = 0;
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("--repetitions"), std::string::npos);
  bad = t.o;
  bad.json = bad.csv = true;
  EXPECT_NE(error_of([&] { run_bench(bad); }).find("--csv"), std::string::npos);
}

}  // namespace
}  // namespace qwenqat::engine
