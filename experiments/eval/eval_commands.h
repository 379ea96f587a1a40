// `qwenqat eval`: GSM8K evaluation of an exported model (.h5) or a Hugging
// Face checkpoint directory with the native engine.
//   generation (default): K samples per problem, pass@1 / maj@K with 95% CIs,
//     per-sample JSON lines under --out (eval.jsonl) with --resume, and a
//     summary JSON beside them (eval.summary.json);
//   --teacher-forced: perplexity of the reference solutions (loss on the
//     completion tokens only), and with --reference the mean KL(P_ref || P_model)
//     and top-1 agreement; written to --out/teacher_forced.json.
// generation_eval() and teacher_forced_eval() are the same runs without the
// CLI (the sweep driver calls them). Torch-free.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "data/gsm8k/gsm8k.h"
#include "data/util/json_io.h"

namespace qwenqat::experiments {

struct EvalOptions {
  std::string model;              // .h5 export or Hugging Face checkpoint directory
  std::string tokenizer;          // overrides the model's tokenizer ("" = the model's)
  std::string data = "embedded";  // GSM8K JSONL file or "embedded"
  std::string split;              // split.json (data split); "" = every problem of --data
  std::string part = "heldout";   // heldout | train (with --split)
  int64_t limit = 0;              // first N problems after the split; 0 = all
  int64_t samples = 1;            // K samples per problem
  double temperature = 0.6;       // 0 = greedy
  double top_p = 0.95;
  int64_t max_new_tokens = 1024;
  int64_t batch = 16;              // prompts generated together
  int threads = 0;                 // 0 = all hardware threads
  std::string act_quant = "auto";  // auto | none | q8 (engine activations)
  bool mmap = false;               // true: .h5 exports used in place (--mmap)
  std::string templ = "auto";      // auto | r1 | qwen | plain
  std::string out = "eval";        // output directory
  bool resume = false;
  uint64_t seed = 0;
  bool teacher_forced = false;
  std::string reference;   // full-precision model for KL / top-1 ("" = none)
  int64_t max_length = 0;  // teacher-forced: cut sequences to N tokens (0 = whole)
  bool json = false;       // CLI: print the summary JSON instead of a table
  bool progress = true;    // progress bar on stderr
};

// One problem of the evaluation set; id = "<data stem>-<0-based line index>"
// ("embedded-3"), stable under --split and --limit.
struct IndexedProblem {
  std::string id;
  data::Gsm8kProblem problem;
};

// --data, restricted to --split's --part and then to the first --limit.
// Throws qwenqat::Error naming the flag on a bad part, a split that does not
// match the data's size, a negative limit, or no problem left.
std::vector<IndexedProblem> load_eval_problems(const EvalOptions& o);

// Runs the generation evaluation; writes <out>/eval.jsonl and
// <out>/eval.summary.json and returns the summary (see docs/EVALUATION.md),
// with "settings.description" naming model, data, split, template.
Json generation_eval(const EvalOptions& o);

// Runs the teacher-forced evaluation; writes and returns
// <out>/teacher_forced.json: sequences, tokens, nll_sum, perplexity and with a
// reference reference_perplexity, kl {mean, ...}, top1_agreement, plus
// "settings" and "wall_seconds".
Json teacher_forced_eval(const EvalOptions& o);

// Adds `eval` to `app`.
void register_eval_commands(CLI::App& app);

}  // namespace qwenqat::experiments
