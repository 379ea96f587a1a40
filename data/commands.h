// The data library's subcommands:
//   qwenqat tokenize --tokenizer PATH (--text STR | --file F) [--jsonl] [--decode]
//   qwenqat data preview --data FILE|embedded --tokenizer PATH [--template NAME] [-n 3]
//   qwenqat data split --data train.jsonl --out split.json [--seed S] [--holdout F]
// Each run_* function writes its output to `out` and throws qwenqat::Error on
// bad input; register_commands() wires them to CLI11.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <ostream>
#include <string>

namespace qwenqat::data {

struct TokenizeOptions {
  std::string tokenizer;  // tokenizer.json or the directory holding it
  std::string text;       // one input (ids as a JSON array with --decode)
  std::string file;       // or: a whole file as one input; with --jsonl one per line
  bool jsonl = false;     // file lines are {"text": ...} (or {"ids": [...]} with --decode)
  bool decode = false;    // ids -> text
  bool add_special_tokens = false;   // BOS/EOS as tokenizer_config.json says
  bool skip_special_tokens = false;  // when decoding
};

struct PreviewOptions {
  std::string data = "embedded";  // GSM8K JSONL, "embedded", or {prompt, completion} JSONL
  std::string format = "gsm8k";   // gsm8k | prompt-completion
  std::string tokenizer;
  std::string template_name;  // empty: default for the tokenizer
  int64_t n = 3;
  int64_t max_length = 2048;
  bool skip_bad_lines = false;
  bool json = false;
};

struct SplitOptions {
  std::string data;
  std::string out;
  uint64_t seed = 0;
  double holdout = 0.05;
  bool skip_bad_lines = false;
  bool json = false;
};

void run_tokenize(const TokenizeOptions& o, std::ostream& out);
void run_preview(const PreviewOptions& o, std::ostream& out);
void run_split(const SplitOptions& o, std::ostream& out);

// Adds `tokenize` and `data` (with `preview`, `split`) to `app`.
void register_commands(CLI::App& app);

}  // namespace qwenqat::data
