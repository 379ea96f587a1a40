// Training data for `qwenqat train`: GSM8K (original JSONL or the embedded
// set) rendered with a prompt template, {"prompt", "completion"} JSONL, or
// pre-tokenized {"ids": [...], "loss_mask": [...]} JSONL (no tokenizer needed;
// used by tests and tiny models), split into train and held-out examples with
// data::make_split. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/batching.h"
#include "data/gsm8k/split.h"

namespace qwenqat::qat {

struct DataOptions {
  // A file (.jsonl) or "embedded" (the built-in GSM8K-format problems).
  std::string data = "embedded";
  // auto | gsm8k | prompt-completion | tokens. auto: "embedded" is gsm8k;
  // otherwise the first non-blank line decides ("question" -> gsm8k, "prompt"
  // -> prompt-completion, "ids" -> tokens).
  std::string format = "auto";
  std::filesystem::path tokenizer;  // tokenizer.json or its directory (not for tokens)
  std::string template_name;        // "" = data::default_template_name(tokenizer)
  std::string eval_data;            // optional held-out file (same format); else split
  double holdout = 0.05;            // fraction held out when eval_data is empty
  uint64_t split_seed = 0;
  bool skip_bad_lines = false;
};

struct TrainData {
  std::vector<data::Example> train, eval;
  std::string format;       // the resolved format
  data::DataSplit split;    // when split from one file (empty lists otherwise)
};

// Loads and tokenizes. Every token id must be in [0, vocab_size). Throws
// qwenqat::Error naming the file (and line) on bad input, and when no usable
// training example (one with at least one loss token after the first
// position) is left.
TrainData load_train_data(const DataOptions& options, int64_t vocab_size);

// Parses tokens JSONL text: one {"ids": [int...], "loss_mask": [0|1...]} per
// line ("loss_mask" optional: then every token but the first is trained on).
// `origin` names the file in errors.
std::vector<data::Example> parse_token_jsonl(const std::string& text, const std::string& origin,
                                             int64_t vocab_size, bool skip_bad_lines);

}  // namespace qwenqat::qat
