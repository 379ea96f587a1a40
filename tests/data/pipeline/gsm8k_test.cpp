// Tests for data/gsm8k: the reader (bad lines with file:line), the embedded
// set, annotation stripping, split determinism, targets and prompt templates.
#include "data/gsm8k/gsm8k.h"

#include <gtest/gtest.h>

#include "data/gsm8k/answer.h"
#include "data/gsm8k/split.h"
#include "data/gsm8k/targets.h"
#include "data/prompts/templates.h"
#include "data/tokenizer/write_tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "tests/util/test_util.h"

namespace qwenqat::data {
namespace {

constexpr const char* kGood = R"({"question": "Q1?", "answer": "2*3=<<2*3=6>>6 cups\n#### 6"})";

TEST(Gsm8k, ParsesAndStripsAnnotations) {
  const auto p = parse_gsm8k(std::string(kGood) + "\n\n", "t.jsonl", false);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].question, "Q1?");
  EXPECT_EQ(p[0].final_answer, "6");
  EXPECT_EQ(p[0].line, 1);
  EXPECT_EQ(solution_reasoning(p[0].answer), "2*3=6 cups");
  EXPECT_EQ(strip_calculator_annotations("a $<<9*2=18>>18 b <<x"), "a $18 b <<x");
}

TEST(Gsm8k, BadLinesNameFileAndLine) {
  const std::string text = std::string(kGood) + "\n" + "{not json\n" +            // line 2
                           R"({"question": "Q"})" + "\n" +                        // line 3
                           R"({"question": "Q", "answer": "no final"})" + "\n" +  // line 4
                           R"([1, 2])" + "\n" +                                   // line 5
                           R"({"question": 5, "answer": "#### 1"})" + "\n" +      // line 6
                           R"({"question": "Q", "answer": "x ####  "})" + "\n" + kGood;
  try {
    parse_gsm8k(text, "data/train.jsonl", false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("data/train.jsonl:2:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--skip-bad-lines"), std::string::npos);
  }
  ReadStats stats;
  const auto p = parse_gsm8k(text, "data/train.jsonl", true, &stats);
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].line, 8);
  EXPECT_EQ(stats.lines, 8);
  EXPECT_EQ(stats.bad_lines, 6);
  ASSERT_EQ(stats.first_errors.size(), 6u);
  EXPECT_NE(stats.first_errors[1].find("data/train.jsonl:3: missing string field \"answer\""),
            std::string::npos);
  EXPECT_THROW(parse_gsm8k("\n\n", "empty.jsonl", true), Error);
  EXPECT_THROW(read_gsm8k("/nonexistent/train.jsonl", false), Error);
}

TEST(Gsm8k, EmbeddedSetIsWellFormedAndSelfConsistent) {
  const auto p = embedded_gsm8k();
  EXPECT_GE(p.size(), 20u);
  EXPECT_LE(p.size(), 50u);
  for (const auto& q : p) {
    // Each final answer parses, and the reasoning's last annotation computes it.
    ASSERT_TRUE(normalize_answer(q.final_answer).has_value()) << q.question;
    const auto last_eq = q.answer.rfind('=');
    const auto close = q.answer.find(">>", last_eq);
    ASSERT_NE(close, std::string::npos) << q.question;
    const std::string computed = q.answer.substr(last_eq + 1, close - last_eq - 1);
    if (q.answer.find("whole packs") == std::string::npos) {
      EXPECT_EQ(normalize_answer(computed), normalize_answer(q.final_answer)) << q.question;
    }
  }
  EXPECT_EQ(load_gsm8k("embedded", false).size(), p.size());
}

TEST(Gsm8kSplit, DeterministicDisjointAndCovering) {
  const DataSplit a = make_split(1000, 0.05, 42, "x");
  const DataSplit b = make_split(1000, 0.05, 42, "x");
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.heldout, b.heldout);
  EXPECT_EQ(a.heldout.size(), 50u);
  EXPECT_EQ(a.train.size(), 950u);
  const DataSplit c = make_split(1000, 0.05, 43, "x");
  EXPECT_NE(a.heldout, c.heldout);
  // Pinned values: the algorithm must not change across machines or versions.
  const DataSplit small = make_split(10, 0.3, 0);
  EXPECT_EQ(small.heldout, (std::vector<int64_t>{2, 3, 6}));  // checked with a Python port
  testing::TempDir dir;
  write_split(dir / "split.json", a);
  const DataSplit r = read_split(dir / "split.json");
  EXPECT_EQ(r.train, a.train);
  EXPECT_EQ(r.seed, 42u);
  Json bad = split_to_json(a);
  bad["heldout"][0] = bad["train"][0];
  EXPECT_THROW(split_from_json(bad, "bad.json"), Error);
  EXPECT_THROW(split_from_json(Json::object(), "bad.json"), Error);
  EXPECT_THROW(make_split(10, 1.0, 0), Error);
}

TEST(Prompts, TemplatesRenderAndDefaultFollowsTokenizer) {
  EXPECT_EQ(get_template("r1").render_prompt("What is 2+2?"),
            "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?\nPlease reason step by step, and put "
            "your final answer within \\boxed{}.<｜Assistant｜><think>\n");
  EXPECT_EQ(get_template("qwen").render_prompt("Q").substr(0, 18), "<|im_start|>user\nQ");
  try {
    get_template("llama");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r1, qwen, plain"), std::string::npos);
  }
  testing::TempDir dir;
  write_byte_level_tokenizer(dir.path());
  const Tokenizer tok = Tokenizer::load(dir.path());
  EXPECT_EQ(default_template_name(tok), "qwen");
  EXPECT_THROW(check_template_tokens(get_template("r1"), tok), Error);
  EXPECT_NO_THROW(check_template_tokens(get_template("qwen"), tok));
  EXPECT_EQ(end_of_turn_text(get_template("plain"), tok), "<|endoftext|>");
}

TEST(Targets, R1TargetAndLossMaskCoverCompletionOnly) {
  const auto problems = parse_gsm8k(kGood, "t.jsonl", false);
  const auto pc = gsm8k_prompt_completion(problems[0], get_template("r1"), "");
  EXPECT_EQ(pc.completion,
            "2*3=6 cups\n</think>\n\nThe final answer is $\\boxed{6}$.<｜end▁of▁sentence｜>");
  // The target scores as correct against its own reference.
  EXPECT_TRUE(score_answer(pc.completion, problems[0].final_answer).correct);
  testing::TempDir dir;
  write_byte_level_tokenizer(dir.path());
  const Tokenizer tok = Tokenizer::load(dir.path());
  const auto qpc = gsm8k_prompt_completion(problems[0], get_template("qwen"),
                                           end_of_turn_text(get_template("qwen"), tok));
  const Example e = tokenize_example(tok, qpc);
  const auto prompt_ids = tok.encode(qpc.prompt);
  ASSERT_EQ(e.ids.size(), e.loss_mask.size());
  for (size_t i = 0; i < e.ids.size(); ++i) {
    EXPECT_EQ(e.loss_mask[i], i >= prompt_ids.size() ? 1 : 0) << i;
  }
  EXPECT_EQ(e.ids.back(), *tok.token_to_id("<|im_end|>"));
  EXPECT_EQ(tok.decode(e.ids), qpc.prompt + qpc.completion);
}

TEST(Targets, PromptCompletionJsonl) {
  testing::TempDir dir;
  write_file_atomic(dir / "pc.jsonl",
                    "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\"}\n");
  EXPECT_THROW(read_prompt_completion_jsonl(dir / "pc.jsonl", false), Error);
  ReadStats st;
  const auto pcs = read_prompt_completion_jsonl(dir / "pc.jsonl", true, &st);
  ASSERT_EQ(pcs.size(), 1u);
  EXPECT_EQ(pcs[0].completion, "b");
  EXPECT_EQ(st.bad_lines, 1);
}

TEST(Gsm8k, RealFilesParseAndTheirTargetsScore) {
  QWENQAT_REQUIRE_SHARED(shared);
  ReadStats st;
  const auto train = read_gsm8k(shared / "data/gsm8k/train.jsonl", false, &st);
  EXPECT_EQ(train.size(), 7473u);
  EXPECT_EQ(st.bad_lines, 0);
  int wrong = 0;
  for (const auto& p : train) {
    const auto pc = gsm8k_prompt_completion(p, get_template("r1"), "");
    if (!score_answer(pc.completion, p.final_answer).correct) ++wrong;
    if (!score_answer(p.answer, p.final_answer).correct) ++wrong;  // via "####"
  }
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace qwenqat::data
