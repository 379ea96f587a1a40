// Tests of qat/eval_accuracy.h and `train --eval-accuracy`: problems come from
// the held-out examples' prompts and GSM8K answers, greedy decoding keeps to
// its budget and stop ids, and the trainer's evaluation reports the accuracy.
#include "qat/eval_accuracy.h"

#include <gtest/gtest.h>

#include <numeric>

#include "data/tokenizer/write_tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "models/checkpoint_io.h"
#include "qat/commands.h"
#include "tests/qat/tiny_model.h"
#include "tests/util/test_util.h"

namespace qwenqat::qat {
namespace {

namespace fs = std::filesystem;

// A tiny random model over the byte-level tokenizer (261 ids) in `dir`.
void write_model(const fs::path& dir) {
  data::write_byte_level_tokenizer(dir / "tok");
  models::Qwen2Config c = testing::tiny_config();
  c.vocab_size = 261;  // the byte-level tokenizer's
  c.max_position_embeddings = 1024;
  models::init_checkpoint(c, dir / "model", models::DType::kF32, 3, dir / "tok");
}

TEST(EvalAccuracy, ProblemsAreThePromptsOfExamplesWithAnswers) {
  std::vector<data::Example> ex(3);
  ex[0] = {{1, 2, 3, 4}, {0, 0, 1, 1}, "18"};
  ex[1] = {{5, 6}, {0, 1}, ""};  // no reference answer: skipped
  ex[2] = {{7, 8, 9}, {0, 1, 1}, "-3"};
  const auto p = accuracy_problems(ex, 5);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].prompt, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(p[0].reference_answer, "18");
  EXPECT_EQ(p[1].prompt, (std::vector<int32_t>{7}));
  EXPECT_EQ(accuracy_problems(ex, 1).size(), 1u);
  EXPECT_TRUE(accuracy_problems(ex, 0).empty());
}

TEST(EvalAccuracy, GreedyKeepsToBudgetAndStopIds) {
  qwenqat::testing::TempDir dir;
  write_model(dir.path());
  auto m = models::load_model(dir / "model");
  const auto tok = data::Tokenizer::load(dir / "tok");
  const std::vector<AccuracyProblem> problems = {{tok.encode("Question: 2+2?\nAnswer:"), "4"},
                                                 {tok.encode("Question: 1+1?\nAnswer:"), "2"}};
  const auto free_run = greedy_exact_match(*m, problems, tok, {}, 7);
  EXPECT_EQ(free_run.n, 2);
  EXPECT_EQ(free_run.finished, 0);
  EXPECT_DOUBLE_EQ(free_run.mean_new_tokens, 7.0);
  std::vector<int32_t> every_id(261);
  std::iota(every_id.begin(), every_id.end(), 0);
  const auto stopped = greedy_exact_match(*m, problems, tok, every_id, 7);
  EXPECT_EQ(stopped.finished, 2);
  EXPECT_DOUBLE_EQ(stopped.mean_new_tokens, 0.0);
  EXPECT_EQ(stopped.correct, 0);  // an empty answer is never right
}

TEST(EvalAccuracy, TrainReportsHeldOutAccuracy) {
  qwenqat::testing::TempDir dir;
  write_model(dir.path());
  TrainCommandOptions o;
  o.model = (dir / "model").string();
  o.out = (dir / "run").string();
  o.preset = "w4g32";
  o.data.data = "embedded";
  o.data.holdout = 0.2;
  o.max_length = 512;
  o.train.steps = 2;
  o.train.progress = false;
  o.train.eval_accuracy = 3;
  o.train.eval_max_new_tokens = 5;
  const Json s = run_train(o);
  EXPECT_EQ(s.at("eval_accuracy_n").get<int64_t>(), 3);
  EXPECT_GE(s.at("eval_accuracy").get<double>(), 0.0);
  EXPECT_NE(read_file(dir / "run" / "metrics.jsonl").find("\"eval_accuracy\""),
            std::string::npos);
  o.train.eval_max_new_tokens = 0;
  o.out = (dir / "run2").string();
  try {
    run_train(o);
    ADD_FAILURE() << "no error for --eval-max-new-tokens 0";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--eval-max-new-tokens"), std::string::npos);
  }
}

}  // namespace
}  // namespace qwenqat::qat
