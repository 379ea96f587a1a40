// Tests for data/tokenizer: the reference cases of the real tokenizer, round
// trips (GSM8K lines, random UTF-8), invalid input, incremental decoding,
// added-token options, and the written byte-level tokenizer.
#include "data/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "data/tokenizer/decoder.h"
#include "data/tokenizer/write_tokenizer.h"
#include "data/util/check.h"
#include "data/util/rng.h"
#include "tests/util/test_util.h"

namespace qwenqat::data {
namespace {

std::filesystem::path real_tokenizer_dir(const std::filesystem::path& shared) {
  return shared / "models" / "deepseek-r1-distill-qwen-1.5b";
}

// Loaded once per test binary: the real vocabulary takes ~1 s to parse.
const Tokenizer& real_tokenizer(const std::filesystem::path& shared) {
  static const Tokenizer tok = Tokenizer::load(real_tokenizer_dir(shared));
  return tok;
}

TEST(Tokenizer, ReproducesEveryReferenceCase) {
  QWENQAT_REQUIRE_SHARED(shared);
  const Tokenizer& tok = real_tokenizer(shared);
  std::ifstream in(shared / "reference" / "tokenizer_cases.jsonl");
  ASSERT_TRUE(in) << "missing reference/tokenizer_cases.jsonl";
  std::string line;
  int n = 0, bad = 0;
  while (std::getline(in, line)) {
    const Json j = parse_json(line, "tokenizer_cases.jsonl");
    const std::string text = j["text"].get<std::string>();
    const auto want = j["ids"].get<std::vector<int32_t>>();
    const auto got = tok.encode(text);
    ++n;
    if (got != want) {
      ++bad;
      ADD_FAILURE() << "case " << n << " differs: " << text.substr(0, 80);
    }
    // Decoding gives back the NFC form of the text.
    EXPECT_EQ(tok.decode(got), nfc(text)) << "case " << n;
  }
  EXPECT_GE(n, 100);
  EXPECT_EQ(bad, 0);
}

TEST(Tokenizer, ConfigDrivesBosAndSpecialIds) {
  QWENQAT_REQUIRE_SHARED(shared);
  const Tokenizer& tok = real_tokenizer(shared);
  ASSERT_TRUE(tok.bos_id().has_value());
  EXPECT_EQ(*tok.bos_id(), 151646);
  EXPECT_EQ(*tok.eos_id(), 151643);
  EXPECT_TRUE(tok.add_bos_token());
  EXPECT_EQ(tok.encode("Hello", true), (std::vector<int32_t>{151646, 9707}));
  EXPECT_EQ(tok.encode("Hello", false), (std::vector<int32_t>{9707}));
  EXPECT_EQ(tok.vocab_size(), 151665);
  EXPECT_TRUE(tok.is_special(151643));
  EXPECT_FALSE(tok.is_special(151648));  // <think> is added but not special
  EXPECT_EQ(tok.token_to_id("<think>"), 151648);
  EXPECT_EQ(tok.token_to_id("Ġthe"), 279);
  EXPECT_EQ(tok.id_to_token(279), "Ġthe");
}

TEST(Tokenizer, DecodeSkipsSpecialTokensOnly) {
  QWENQAT_REQUIRE_SHARED(shared);
  const Tokenizer& tok = real_tokenizer(shared);
  const std::string text =
      "<｜begin▁of▁sentence｜><｜User｜>Hi<think>\nx</think><｜end▁of▁sentence｜>";
  const auto ids = tok.encode(text);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.decode(ids, true), "<｜User｜>Hi<think>\nx</think>");
  const std::vector<int32_t> bad = {9707, 999999};
  EXPECT_THROW(tok.decode(bad), Error);
  const std::vector<int32_t> negative = {-1};
  EXPECT_THROW(tok.decode(negative), Error);
}

TEST(Tokenizer, RoundTripsGsm8kLines) {
  QWENQAT_REQUIRE_SHARED(shared);
  const Tokenizer& tok = real_tokenizer(shared);
  std::ifstream in(shared / "data" / "gsm8k" / "train.jsonl");
  ASSERT_TRUE(in);
  std::string line;
  for (int i = 0; i < 300 && std::getline(in, line); ++i) {
    const Json j = parse_json(line, "train.jsonl");
    for (const char* field : {"question", "answer"}) {
      const std::string text = j[field].get<std::string>();
      EXPECT_EQ(tok.decode(tok.encode(text)), nfc(text)) << "line " << i + 1;
    }
  }
}

// Random valid UTF-8 drawn from ASCII, Latin, combining marks, CJK, emoji,
// whitespace (incl. U+0085, U+3000) and pieces of added tokens.
std::string random_utf8(SplitMix64& rng) {
  static const char32_t kPool[] = {'a',    'Z',    '0',  '9',   ' ',      '\n',   '\r',   '\t',
                                   '\'',   's',    '<',  '|',   '>',      '$',    '.',    ',',
                                   0x85,   0xA0,   0xE9, 0x301, 0x308,    0x3000, 0x4E2D, 0x1F999,
                                   0xFF26, 0x2028, 0x0,  0x7F,  0x10FFFF, 0xFFFD};
  static const char* kPieces[] = {"<think>", "</think>", "<｜User｜>", "'ll", "  ", "123", "é"};
  std::string s;
  const int n = static_cast<int>(rng.below(40));
  for (int i = 0; i < n; ++i) {
    if (rng.below(8) == 0) {
      s += kPieces[rng.below(std::size(kPieces))];
    } else if (rng.below(4) == 0) {
      append_utf8(s, static_cast<char32_t>(0xA0 + rng.below(0x2FF60)));  // avoid surrogates
    } else {
      append_utf8(s, kPool[rng.below(std::size(kPool))]);
    }
  }
  // Drop any surrogate code points produced by the range above.
  return find_invalid_utf8(s) == std::string::npos ? s : utf8_lossy(s);
}

TEST(Tokenizer, RoundTripsRandomUtf8) {
  QWENQAT_REQUIRE_SHARED(shared);
  const Tokenizer& tok = real_tokenizer(shared);
  SplitMix64 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    const std::string s = random_utf8(rng);
    const auto ids = tok.encode(s);
    ASSERT_EQ(tok.decode(ids), nfc(s)) << "case " << i;
    // Streaming decode matches whole decode, token by token.
    IncrementalDecoder dec(tok);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string part = dec.push(id);
      ASSERT_EQ(find_invalid_utf8(part), std::string::npos);
      streamed += part;
    }
    streamed += dec.finish();
    ASSERT_EQ(streamed, tok.decode(ids)) << "case " << i;
  }
}

TEST(Tokenizer, InvalidUtf8IsAClearError) {
  QWENQAT_REQUIRE_SHARED(shared);
  const Tokenizer& tok = real_tokenizer(shared);
  for (const std::string& bad :
       {std::string("ab\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
        std::string("\xc0\xaf"), std::string("x\xf4\x90\x80\x80")}) {
    try {
      tok.encode(bad);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("invalid UTF-8 at byte"), std::string::npos);
    }
  }
}

TEST(Tokenizer, IncrementalDecoderHoldsSplitCharacters) {
  QWENQAT_REQUIRE_SHARED(shared);
  const Tokenizer& tok = real_tokenizer(shared);
  // " 🦙" is split over three byte tokens by this vocabulary (" \xF0\x9F", ...).
  const auto ids = tok.encode(" 🦙!");
  ASSERT_GE(ids.size(), 3u);
  IncrementalDecoder dec(tok);
  EXPECT_EQ(dec.push(ids[0]), " ");
  EXPECT_EQ(dec.pending_bytes(), 2u);
  std::string rest;
  for (size_t i = 1; i < ids.size(); ++i) rest += dec.push(ids[i]);
  EXPECT_EQ(rest, "🦙!");
  // A stream cut in the middle of a character flushes one U+FFFD.
  IncrementalDecoder cut(tok);
  EXPECT_EQ(cut.push(ids[0]), " ");
  EXPECT_EQ(cut.finish(), "\xEF\xBF\xBD");
}

TEST(Tokenizer, WrittenByteLevelTokenizerLoadsAndRoundTrips) {
  testing::TempDir dir;
  write_byte_level_tokenizer(dir.path());
  const Tokenizer tok = Tokenizer::load(dir.path());
  EXPECT_EQ(tok.vocab_size(), 261);
  EXPECT_EQ(tok.eos_id(), 256);
  EXPECT_FALSE(tok.add_bos_token());
  EXPECT_EQ(tok.encode("<|im_start|>hi"), (std::vector<int32_t>{257, 'h', 'i'}));
  EXPECT_EQ(tok.encode("<think>é"), (std::vector<int32_t>{259, 0xC3, 0xA9}));
  SplitMix64 rng(7);
  for (int i = 0; i < 500; ++i) {
    const std::string s = random_utf8(rng);
    ASSERT_EQ(tok.decode(tok.encode(s)), nfc(s)) << "case " << i;
  }
  ByteLevelTokenizerSpec twice;
  twice.added_tokens = {"<|im_end|>"};
  EXPECT_THROW(write_byte_level_tokenizer(dir / "x", twice), Error);
}

// A hand-written tokenizer.json exercising merges, added-token options and
// malformed files.
Json small_tokenizer_json() {
  Json vocab = Json::object();
  for (int b = 0; b < 256; ++b) vocab[bytes_to_byte_level(std::string(1, char(b)))] = b;
  vocab["ab"] = 256;
  vocab["abc"] = 257;
  vocab["bc"] = 258;
  Json added = Json::array();
  added.push_back({{"id", 300},
                   {"content", "[M]"},
                   {"special", true},
                   {"lstrip", true},
                   {"rstrip", true},
                   {"normalized", false},
                   {"single_word", false}});
  added.push_back({{"id", 301},
                   {"content", "cat"},
                   {"special", false},
                   {"single_word", true},
                   {"normalized", false},
                   {"lstrip", false},
                   {"rstrip", false}});
  return {
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"use_regex", true}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"added_tokens", added},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", Json::array({"a b", Json::array({"ab", "c"}), "b c"})}}}};
}

TEST(Tokenizer, MergesByRankAndAddedTokenOptions) {
  const Tokenizer tok = Tokenizer::from_json(small_tokenizer_json(), Json(), "small.json");
  EXPECT_EQ(tok.encode("abc"), (std::vector<int32_t>{257}));
  EXPECT_EQ(tok.encode("bca"), (std::vector<int32_t>{258, 'a'}));
  EXPECT_EQ(tok.encode("abab"), (std::vector<int32_t>{256, 256}));
  // lstrip/rstrip swallow the surrounding spaces.
  EXPECT_EQ(tok.encode("x  [M]  y"), (std::vector<int32_t>{'x', 300, 'y'}));
  // single_word: "cat" only as a whole word.
  EXPECT_EQ(tok.encode("a cat"), (std::vector<int32_t>{'a', ' ', 301}));
  const auto whole = tok.encode("cat");
  EXPECT_EQ(whole, (std::vector<int32_t>{301}));
  const auto inside = tok.encode("cats");
  EXPECT_EQ(std::count(inside.begin(), inside.end(), 301), 0);
  EXPECT_EQ(tok.decode(tok.encode("x [M] y"), true), "xy");
}

TEST(Tokenizer, MalformedFilesAreClearErrors) {
  auto expect_error = [](Json j, const std::string& needle) {
    try {
      Tokenizer::from_json(j, Json(), "bad.json");
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Json j = small_tokenizer_json();
  j["model"]["type"] = "WordPiece";
  expect_error(j, "only byte-level BPE");
  j = small_tokenizer_json();
  j["model"]["merges"] = Json::array({"a"});
  expect_error(j, "model.merges[0]");
  j = small_tokenizer_json();
  j["model"]["merges"] = Json::array({"x y"});
  expect_error(j, "missing from model.vocab");
  j = small_tokenizer_json();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}};
  expect_error(j, "does not compile");
  j = small_tokenizer_json();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_error(j, "Metaspace");
  j = small_tokenizer_json();
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_error(j, "Lowercase");
  j = small_tokenizer_json();
  j["added_tokens"][0].erase("id");
  expect_error(j, "added_tokens");
  j = small_tokenizer_json();
  j.erase("model");
  expect_error(j, "model");
  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer.json"), Error);
}

TEST(Tokenizer, WhitespaceEscapesFollowOniguruma) {
  // An escaped backslash followed by 's' is not \s.
  EXPECT_EQ(rewrite_whitespace_escapes(R"(a\\sb)"), R"(a\\sb)");
  const std::string r = rewrite_whitespace_escapes(R"([^\s\p{L}]\S)");
  EXPECT_EQ(r.find(R"(\s)"), std::string::npos);
  EXPECT_EQ(r.find(R"(\S)"), std::string::npos);
  EXPECT_NE(r.find(R"(\x{85})"), std::string::npos);
  Regex ws(R"(\s+)", false, "test");
  std::vector<std::pair<size_t, size_t>> m;
  ws.find_all(
      "a\xC2\x85"
      "b",
      0, m);  // U+0085 NEL is White_Space
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], std::make_pair(size_t{1}, size_t{3}));
}

}  // namespace
}  // namespace qwenqat::data
