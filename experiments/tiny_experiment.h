// The tiny end-to-end experiment, and `qwenqat demo` (the README's main job),
// which is the same experiment at a smaller size:
//   1. write a byte-level BPE tokenizer.json with no merges (vocabulary 256
//      bytes + a few added tokens: an ordinary Hugging Face tokenizer file);
//   2. init a small random Qwen2 checkpoint with that vocabulary;
//   3. train it in full precision on the GSM8K train split (`qwenqat train
//      --preset none`), holding out the split the sweep evaluates on;
//   4. write a sweep file for it and run the sweep (PTQ / QAT / QAT+KD at the
//      chosen bits and group sizes: train, export to .h5, evaluate
//      perplexity, KL and top-1 agreement with the native engine);
//   5. write the Markdown table and the accuracy-versus-size plot.
// Every step reuses its output when it already exists under `out`, so an
// interrupted run continues where it stopped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::experiments {

struct TinyExperimentOptions {
  std::string out = "qwenqat-demo";  // output directory
  std::string data = "embedded";     // GSM8K train JSONL, or "embedded" (built-in problems)
  double holdout = 0.2;              // fraction of `data` held out for evaluation
  int64_t eval_limit = 0;            // held-out problems evaluated (0 = all)
  // Model shape (Hugging Face config fields).
  int64_t hidden_size = 64;
  int64_t intermediate_size = 128;
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 2;
  // Base (full-precision) training.
  int64_t base_steps = 60;
  double base_lr = 3e-3;
  int64_t batch_size = 8;
  int64_t max_length = 256;
  // Sweep grid.
  std::vector<int> bits = {8, 4, 2};
  std::vector<int> group_sizes = {32};
  std::vector<std::string> methods = {"ptq", "qat", "qat_kd"};
  // Per-token activation bits added as a second grid, for int4 at the first
  // group size only (e.g. {8}: w4g32 with int8 inputs, "8da4w"); empty: none.
  std::vector<int> act_bits = {};
  int64_t qat_steps = 20;
  double qat_lr = 3e-4;
  double scale_lr = 1e-3;
  uint64_t seed = 0;
  int threads = 0;  // engine threads (0 = all cores)
  bool progress = true;

  // Throws qwenqat::Error naming the flag when a value is out of range.
  void validate() const;
};

// The model config (Hugging Face config.json fields) for `o` and a tokenizer
// of `vocab_size` tokens.
Json tiny_config_json(const TinyExperimentOptions& o, int64_t vocab_size);

// The sweep file run_tiny_experiment writes to OUT/sweep.json (base_model =
// `base_model`); rerunnable by hand with `qwenqat sweep`.
Json tiny_sweep_json(const TinyExperimentOptions& o, const std::string& base_model);

// Runs the experiment; returns {"out", "base_model", "base_train": summary,
// "sweep": {"ran", "skipped", "failed"}, "results": OUT/sweep dir, "table":
// Markdown, "seconds"}. Also written to OUT/summary.json. Throws
// qwenqat::Error on failure (e.g. an unwritable OUT, a bad data file).
Json run_tiny_experiment(const TinyExperimentOptions& options);

}  // namespace qwenqat::experiments
