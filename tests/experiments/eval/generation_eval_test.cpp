// Tests of the evaluation bookkeeping: JSON-lines records, truncated-tail
// tolerance, resume after an interruption, and the summary (accuracy, maj@K,
// cut-off share) against hand-counted values.
#include "experiments/eval/generation_eval.h"

#include <gtest/gtest.h>

#include <fstream>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "experiments/eval/jsonl.h"
#include "tests/util/test_util.h"

namespace qwenqat::experiments {
namespace {

// Answers "<n>" for prompt "q<n>" except that sample calls listed in `wrong`
// (by call order) answer "0"; every 4th generation is cut off. Throws on call
// number `fail_at` (0-based, -1 never) to simulate a crash.
class FakeGenerator : public Generator {
 public:
  int calls = 0, fail_at = -1;
  int64_t generated = 0;
  std::vector<std::string> seen_prompts;
  std::vector<GenerationResult> generate(const std::vector<std::string>& prompts,
                                         const SamplingSettings&, uint64_t) override {
    if (calls++ == fail_at) fail("fake generator crashed");
    std::vector<GenerationResult> out;
    for (const auto& p : prompts) {
      seen_prompts.push_back(p);
      GenerationResult g;
      g.text = "The answer is " + answer_for(p, generated);
      g.tokens = 10 + generated % 3;
      g.finished = generated % 4 != 3;
      ++generated;
      out.push_back(g);
    }
    return out;
  }
  std::function<std::string(const std::string&, int64_t)> answer_for =
      [](const std::string& p, int64_t) { return p.substr(1); };
};

EvalSettings test_settings(int64_t samples, int64_t batch) {
  EvalSettings s;
  s.samples = samples;
  s.batch_size = batch;
  s.progress = false;
  s.extract = [](const std::string& text) {
    auto pos = text.rfind(' ');
    return pos == std::string::npos ? std::string() : text.substr(pos + 1);
  };
  s.equal = [](const std::string& a, const std::string& b) { return a == b; };
  return s;
}

std::vector<EvalProblem> problems(int n) {
  std::vector<EvalProblem> ps;
  for (int i = 0; i < n; ++i) {  // appends: GCC 12 warns falsely on "p" + std::string&&
    const std::string k = std::to_string(i);
    ps.push_back({std::string("p").append(k), std::string("q").append(k), k});
  }
  return ps;
}

TEST(GenerationEval, RecordsAndSummary) {
  testing::TempDir dir;
  FakeGenerator gen;
  // 3 problems x 2 samples = 6 generations, problem-major; generations #1
  // (p0 s1) and #2 (p1 s0) answer "9". Correct: p0 1/2, p1 1/2, p2 2/2 ->
  // mean pass@1 = (0.5 + 0.5 + 1) / 3 = 2/3.
  gen.answer_for = [](const std::string& p, int64_t k) {
    return (k == 1 || k == 2) ? std::string("9") : p.substr(1);
  };
  auto report = run_generation_eval(problems(3), test_settings(2, 4), gen,
                                    dir / "results.jsonl", false);
  EXPECT_EQ(report.generated, 6);
  EXPECT_EQ(gen.calls, 2);  // batches of 4 then 2
  EXPECT_EQ(report.summary.problems, 3);
  EXPECT_NEAR(report.summary.accuracy.value, 2.0 / 3.0, 1e-12);
  // maj@2: p0 ties "0" vs "9" -> "0" came first (correct); p1 ties "9" vs "1" ->
  // "9" (wrong); p2 "2" (correct) -> 2/3.
  EXPECT_NEAR(report.summary.maj_at_k.value, 2.0 / 3.0, 1e-12);
  LoadedRecords loaded = load_records(dir / "results.jsonl");
  ASSERT_EQ(loaded.records.size(), 6u);
  EXPECT_EQ(loaded.records[2].id, "p1");
  EXPECT_EQ(loaded.records[2].extracted, "9");
  EXPECT_FALSE(loaded.records[2].correct);
  EXPECT_EQ(loaded.records[3].sample, 1);
  EXPECT_TRUE(loaded.records[3].correct);
  EXPECT_FALSE(loaded.records[3].finished);  // generation #3 is cut off
  EXPECT_NEAR(report.summary.cut_off_share, 1.0 / 6.0, 1e-12);
  // tokens 10, 11, 12, 10, 11, 12 -> mean 11.
  EXPECT_NEAR(report.summary.mean_generated_tokens, 11.0, 1e-12);
  Json summary = read_json_file(dir / "results.summary.json");
  EXPECT_EQ(summary["samples"], 6);
  EXPECT_EQ(summary["settings"]["samples"], 2);
  EXPECT_EQ(summary["complete"], true);
  EXPECT_NEAR(summary["maj_at_k"]["value"].get<double>(), 2.0 / 3.0, 1e-12);
}

TEST(GenerationEval, RefusesToOverwriteWithoutResume) {
  testing::TempDir dir;
  FakeGenerator gen;
  run_generation_eval(problems(2), test_settings(1, 2), gen, dir / "r.jsonl", false);
  EXPECT_THROW(run_generation_eval(problems(2), test_settings(1, 2), gen, dir / "r.jsonl", false),
               Error);
}

TEST(GenerationEval, ResumeAfterCrashRedoesOnlyMissing) {
  testing::TempDir dir;
  const auto path = dir / "results.jsonl";
  FakeGenerator crashing;
  crashing.fail_at = 2;  // batches of 2: 4 of the 10 generations finish
  EXPECT_THROW(run_generation_eval(problems(5), test_settings(2, 2), crashing, path, false), Error);
  ASSERT_EQ(load_records(path).records.size(), 4u);
  // Simulate a write cut short by the crash: a partial last line.
  { std::ofstream(path, std::ios::app) << R"({"id": "p2", "sample": 0, "prom)"; }
  FakeGenerator gen;
  auto report = run_generation_eval(problems(5), test_settings(2, 2), gen, path, true);
  EXPECT_EQ(report.resumed, 4);
  EXPECT_EQ(report.generated, 6);
  ASSERT_EQ(report.warnings.size(), 1u);  // the truncated line
  // Only p2..p4 were asked for, each twice.
  ASSERT_EQ(gen.seen_prompts.size(), 6u);
  EXPECT_EQ(gen.seen_prompts.front(), "q2");
  EXPECT_EQ(gen.seen_prompts.back(), "q4");
  LoadedRecords all = load_records(path);
  EXPECT_TRUE(all.warnings.empty());  // the partial line was cut off
  ASSERT_EQ(all.records.size(), 10u);
  EXPECT_EQ(report.summary.samples, 10);
  EXPECT_NEAR(report.summary.accuracy.value, 1.0, 1e-12);
  // A second resume has nothing left to do.
  FakeGenerator idle;
  auto again = run_generation_eval(problems(5), test_settings(2, 2), idle, path, true);
  EXPECT_EQ(again.generated, 0);
  EXPECT_EQ(idle.calls, 0);
}

TEST(GenerationEval, ResumeRejectsOtherRuns) {
  testing::TempDir dir;
  const auto path = dir / "results.jsonl";
  FakeGenerator gen;
  run_generation_eval(problems(2), test_settings(2, 2), gen, path, false);
  // Different prompt text for the same id.
  auto changed = problems(2);
  changed[1].prompt = "other template q1";
  EXPECT_THROW(run_generation_eval(changed, test_settings(2, 2), gen, path, true), Error);
  // Fewer samples than recorded.
  EXPECT_THROW(run_generation_eval(problems(2), test_settings(1, 2), gen, path, true), Error);
  // A problem set that lacks a recorded id.
  EXPECT_THROW(run_generation_eval(problems(1), test_settings(2, 2), gen, path, true), Error);
  // More samples than before: only the new samples are generated.
  FakeGenerator more;
  auto r = run_generation_eval(problems(2), test_settings(3, 8), more, path, true);
  EXPECT_EQ(r.generated, 2);
}

TEST(GenerationEval, BadSettingsAndGenerator) {
  testing::TempDir dir;
  FakeGenerator gen;
  auto s = test_settings(0, 2);
  EXPECT_THROW(run_generation_eval(problems(1), s, gen, dir / "a.jsonl", false), Error);
  s = test_settings(1, 2);
  s.extract = nullptr;
  EXPECT_THROW(run_generation_eval(problems(1), s, gen, dir / "b.jsonl", false), Error);
  auto dup = problems(2);
  dup[1].id = "p0";
  EXPECT_THROW(run_generation_eval(dup, test_settings(1, 2), gen, dir / "c.jsonl", false), Error);
  class Short : public Generator {
    std::vector<GenerationResult> generate(const std::vector<std::string>&,
                                           const SamplingSettings&, uint64_t) override {
      return {};
    }
  } short_gen;
  EXPECT_THROW(run_generation_eval(problems(1), test_settings(1, 2), short_gen, dir / "d.jsonl",
                                   false),
               Error);
}

TEST(Results, BadRecordsAreRejected) {
  testing::TempDir dir;
  const auto path = dir / "r.jsonl";
  const std::string good =
      R"({"id":"a","sample":0,"prompt_id":"x","generated":"g","extracted":"1","reference":"1","correct":true,"tokens":3,"finished":true})";
  write_file_atomic(path, good + "\n");
  EXPECT_EQ(load_records(path).records.size(), 1u);
  // A complete last line without newline is accepted.
  std::string second = good;
  second.replace(second.find("\"sample\":0"), 10, "\"sample\":1");
  write_file_atomic(path, good + "\n" + second);
  EXPECT_EQ(load_records(path).records.size(), 2u);
  for (const std::string& bad :
       {std::string(R"({"id":"a"})"), std::string(R"([1,2])"),
        std::string(R"({"id":"a","sample":"0","prompt_id":"x","generated":"g","extracted":"1","reference":"1","correct":true,"tokens":3,"finished":true})"),
        std::string(R"({"id":"a","sample":-1,"prompt_id":"x","generated":"g","extracted":"1","reference":"1","correct":true,"tokens":3,"finished":true})"),
        std::string(R"({"id":"a","sample":0,"prompt_id":"x","generated":"g","extracted":"1","reference":"1","correct":true,"tokens":3,"finished":true,"cut_off":true})"),
        std::string("not json")}) {
    write_file_atomic(path, bad + "\n" + good + "\n");
    EXPECT_THROW(load_records(path), Error) << bad;
  }
  // Duplicates keep the first with a warning.
  write_file_atomic(path, good + "\n" + good + "\n");
  auto dup = load_records(path);
  EXPECT_EQ(dup.records.size(), 1u);
  EXPECT_EQ(dup.warnings.size(), 1u);
  EXPECT_EQ(summary_path_for(dir / "x" / "results.jsonl"), dir / "x" / "results.summary.json");
}

}  // namespace
}  // namespace qwenqat::experiments
