// Tests of experiments/tiny_experiment.h (the demo and the tiny-gsm8k
// experiment) at a very small size: every step runs and writes its files, the
// rows are the grid's, a re-run reuses everything, and bad options name the flag.
#include "experiments/tiny_experiment.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <utility>
#include <vector>

#include "data/util/check.h"
#include "data/util/json_io.h"
#include "experiments/sweep/sweep_results.h"
#include "export/format/h5_inspect.h"
#include "tests/util/test_util.h"

namespace qwenqat::experiments {
namespace {

namespace fs = std::filesystem;

TinyExperimentOptions small(const fs::path& out) {
  TinyExperimentOptions o;
  o.out = out.string();
  o.hidden_size = 32;
  o.intermediate_size = 64;
  o.num_hidden_layers = 1;
  o.num_attention_heads = 2;
  o.num_key_value_heads = 1;
  o.base_steps = 4;
  o.batch_size = 4;
  o.max_length = 320;
  o.bits = {4};
  o.group_sizes = {32};
  o.methods = {"ptq", "qat_kd"};
  o.act_bits = {8};  // + the w4g32 int8-activation points
  o.qat_steps = 2;
  o.threads = 1;
  o.progress = false;
  return o;
}

TEST(TinyExperiment, RunsEveryStepAndReusesItsOutputs) {
  testing::TempDir dir;
  const auto o = small(dir / "run");
  const Json s = run_tiny_experiment(o);
  EXPECT_EQ(s["sweep"]["ran"].get<int64_t>(), 5);  // fp, ptq, qat_kd, and both with a8
  EXPECT_TRUE(s["sweep"]["failed"].empty());
  for (const char* f : {"tokenizer/tokenizer.json", "init/model.safetensors", "base_train.json",
                        "sweep.json", "sweep/results.jsonl", "sweep/results.csv",
                        "sweep/results.md", "sweep/accuracy_vs_size.png", "summary.json"}) {
    EXPECT_TRUE(fs::exists(dir / "run" / f)) << f;
  }
  const LoadedRows rows = load_rows(dir / "run" / "sweep" / kResultsJsonl);
  ASSERT_EQ(rows.rows.size(), 5u);
  int a8_rows = 0;
  for (const auto& r : rows.rows) {
    if (r.point.scheme.act_bits == 8) {
      ++a8_rows;
      // The export records the activation bits, so the engine evaluates the
      // model as trained.
      const auto h5 = dir / "run" / "sweep" / "points" / r.point.id / "model.h5";
      ASSERT_TRUE(fs::exists(h5)) << h5;
      EXPECT_NE(format::inspect_table(format::inspect_model_file(h5)).find("w4g32+a8"),
                std::string::npos);
    }
    ASSERT_TRUE(r.metrics.perplexity.has_value()) << r.point.id;
    EXPECT_GT(*r.metrics.perplexity, 1.0) << r.point.id;
    if (r.point.method == "fp") {
      EXPECT_EQ(*r.metrics.kl_mean, 0.0);
    } else {
      EXPECT_GT(r.metrics.size_bytes, 0);
      EXPECT_NEAR(r.metrics.bits_per_weight, 4.5, 0.2) << r.point.id;  // 4 + 16/32
      EXPECT_GE(*r.metrics.kl_mean, 0.0);
    }
  }
  EXPECT_EQ(a8_rows, 2);
  EXPECT_NE(s["table"].get<std::string>().find("| w4g32 | PTQ (RTN) |"), std::string::npos);
  EXPECT_NE(s["table"].get<std::string>().find("| w4g32-a8 | PTQ (RTN) |"), std::string::npos);
  // A second run finds everything done.
  const Json again = run_tiny_experiment(o);
  EXPECT_EQ(again["sweep"]["ran"].get<int64_t>(), 0);
  EXPECT_EQ(again["sweep"]["skipped"].get<int64_t>(), 5);
  EXPECT_EQ(again["table"], s["table"]);
  // Other model settings in the same directory are refused, naming the setting.
  auto other = o;
  other.hidden_size = 64;
  try {
    run_tiny_experiment(other);
    ADD_FAILURE() << "no error for a changed --hidden";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hidden"), std::string::npos) << e.what();
  }
}

TEST(TinyExperiment, BadOptionsNameTheFlag) {
  testing::TempDir dir;
  auto expect_error = [&](TinyExperimentOptions o, const std::string& flag) {
    try {
      o.validate();
      ADD_FAILURE() << "no error for " << flag;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  const std::vector<std::pair<std::function<void(TinyExperimentOptions&)>, std::string>> cases = {
      {[](auto& o) { o.group_sizes = {48}; }, "--group-sizes"},
      {[](auto& o) { o.num_attention_heads = 3; }, "--heads"},
      {[](auto& o) { o.holdout = 1.0; }, "--holdout"},
      {[](auto& o) { o.qat_steps = 0; }, "--qat-steps"},
      {[](auto& o) { o.base_lr = 0; }, "--base-lr"},
      {[](auto& o) { o.act_bits = {16}; }, "--act-bits"}};
  for (const auto& [edit, flag] : cases) {
    auto o = small(dir / "x");
    edit(o);
    expect_error(o, flag);
  }
}

}  // namespace
}  // namespace qwenqat::experiments
