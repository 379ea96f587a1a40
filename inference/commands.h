// The engine's subcommands: `qwenqat generate` (stream a completion from a
// Hugging Face checkpoint or a .h5 export) and `qwenqat bench` (throughput,
// weight bandwidth, peak RSS, machine read bandwidth), plus logits_json() for
// `qwenqat logits --backend engine`.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::engine {

struct GenerateCommandOptions {
  std::string model;
  std::string prompt;          // text, rendered with the template
  std::string ids;             // or "1,2,3": raw token ids, no template
  std::string templ = "auto";  // auto | r1 | qwen | plain | none
  std::string tokenizer;       // tokenizer.json (or dir) overriding the model's
  int64_t max_new_tokens = 256;
  float temperature = 0.6f;
  float top_p = 0.95f;
  int64_t top_k = 0;
  uint64_t seed = 0;
  int threads = 0;  // 0: hardware threads
  std::string kv_cache = "f32";
  std::string kernels = "auto";
  std::string act_quant = "auto";  // auto | none | q8 (kernels/act_quant.h)
  bool mmap = false;               // true: use the .h5's pages in place (MapMode)
  int64_t max_context = 0;         // 0: max_position_embeddings
  std::vector<std::string> stop;
  bool json = false;
};

// Help text of the --act-quant and --mmap flags (generate, bench, eval).
extern const char* const kActQuantHelp;
extern const char* const kMmapHelp;

// Runs generation; streams to stdout (text, or ids without a tokenizer).
void run_generate(const GenerateCommandOptions& o);

// Parses "1,2,3" into token ids; throws qwenqat::Error naming `flag`.
std::vector<int32_t> parse_id_list(const std::string& s, const std::string& flag);

// The engine's logits for `ids` ([T] token ids) with `model_path` (checkpoint
// dir or .h5): {"logits": [[vocab floats] x T]}, the JSON of the LibTorch
// `qwenqat logits`. threads >= 1.
Json logits_json(const std::filesystem::path& model_path, const std::vector<int32_t>& ids,
                 int threads);

// Adds generate and bench to `app`.
void register_commands(CLI::App& app);

}  // namespace qwenqat::engine
