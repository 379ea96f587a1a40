// Tests for data/commands.h through the run_* functions (the CLI wiring is
// CLI11's): tokenize / decode / --jsonl, preview and split, including errors.
#include "data/commands.h"

#include <gtest/gtest.h>

#include <sstream>

#include "data/gsm8k/split.h"
#include "data/tokenizer/write_tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "tests/util/test_util.h"

namespace qwenqat::data {
namespace {

TEST(Commands, TokenizeTextFileJsonlAndDecode) {
  testing::TempDir dir;
  write_byte_level_tokenizer(dir / "tok");
  TokenizeOptions o;
  o.tokenizer = (dir / "tok").string();
  o.text = "hi<|im_end|>";
  std::ostringstream out;
  run_tokenize(o, out);
  EXPECT_EQ(out.str(), "[104,105,258]\n");
  o.decode = true;
  o.text = "[104,105,258]";
  out.str("");
  run_tokenize(o, out);
  EXPECT_EQ(out.str(), "hi<|im_end|>\n");
  o.skip_special_tokens = true;
  out.str("");
  run_tokenize(o, out);
  EXPECT_EQ(out.str(), "hi\n");

  write_file_atomic(dir / "in.jsonl", "{\"text\": \"ab\", \"k\": 1}\n\n{\"text\": \"c\"}\n");
  TokenizeOptions j;
  j.tokenizer = o.tokenizer;
  j.file = (dir / "in.jsonl").string();
  j.jsonl = true;
  out.str("");
  run_tokenize(j, out);
  EXPECT_EQ(out.str(),
            "{\"ids\":[97,98],\"k\":1,\"text\":\"ab\"}\n{\"ids\":[99],\"text\":\"c\"}\n");

  write_file_atomic(dir / "bad.jsonl", "{\"text\": \"ab\"}\n{\"txt\": 1}\n");
  j.file = (dir / "bad.jsonl").string();
  try {
    run_tokenize(j, out);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2"), std::string::npos) << e.what();
  }
  TokenizeOptions both = o;
  both.file = j.file;
  EXPECT_THROW(run_tokenize(both, out), Error);
  TokenizeOptions bad_ids = o;
  bad_ids.text = "[1, \"x\"]";
  EXPECT_THROW(run_tokenize(bad_ids, out), Error);
  bad_ids.text = "[99999]";
  EXPECT_THROW(run_tokenize(bad_ids, out), Error);
}

TEST(Commands, PreviewMarksLossTokens) {
  testing::TempDir dir;
  write_byte_level_tokenizer(dir / "tok");
  PreviewOptions o;
  o.tokenizer = (dir / "tok").string();
  o.n = 2;
  std::ostringstream out;
  run_preview(o, out);
  const std::string s = out.str();
  EXPECT_NE(s.find("=== example 2"), std::string::npos);
  EXPECT_NE(s.find("template qwen"), std::string::npos);
  EXPECT_NE(s.find("*258:\"<|im_end|>\""), std::string::npos);  // loss on the end of turn
  EXPECT_EQ(s.find("*257:"), std::string::npos);  // never on the prompt's <|im_start|>
  o.json = true;
  o.n = 1;
  out.str("");
  run_preview(o, out);
  const Json j = parse_json(out.str(), "preview");
  EXPECT_EQ(j["ids"].size(), j["loss_mask"].size());
  o.template_name = "r1";  // this tokenizer lacks the r1 tokens
  EXPECT_THROW(run_preview(o, out), Error);
}

TEST(Commands, SplitWritesIndicesFile) {
  testing::TempDir dir;
  std::string text;
  for (int i = 0; i < 40; ++i) {
    text += "{\"question\": \"q" + std::to_string(i) + "\", \"answer\": \"#### " +
            std::to_string(i) + "\"}\n";
  }
  write_file_atomic(dir / "train.jsonl", text + "oops\n");
  SplitOptions o;
  o.data = (dir / "train.jsonl").string();
  o.out = (dir / "split.json").string();
  o.holdout = 0.25;
  std::ostringstream out;
  EXPECT_THROW(run_split(o, out), Error);  // a bad line fails ...
  o.skip_bad_lines = true;
  run_split(o, out);  // ... unless skipped and counted
  EXPECT_NE(out.str().find("skipped 1 malformed line"), std::string::npos);
  const DataSplit s = read_split(o.out);
  EXPECT_EQ(s.total, 40);
  EXPECT_EQ(s.heldout.size(), 10u);
}

}  // namespace
}  // namespace qwenqat::data
