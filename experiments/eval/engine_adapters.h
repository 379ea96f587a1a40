// The native engine behind the evaluation interfaces: EngineGenerator (a
// Generator: batched generation of many prompts at once with the engine's
// batched decode, stopping at EOS / end-of-turn) and EngineLogitsSource (a
// LogitsSource: teacher-forced logits of an id sequence), plus the loading of
// a --model path (a .h5 export or a Hugging Face checkpoint directory) with
// its tokenizer and prompt template. Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/prompts/templates.h"
#include "data/tokenizer/tokenizer.h"
#include "experiments/eval/generation_eval.h"
#include "experiments/eval/teacher_forced.h"
#include "inference/model.h"
#include "inference/thread_pool.h"

namespace qwenqat::experiments {

// A model loaded for evaluation. The model and pool are not thread-safe: use
// an EngineModel from one thread at a time.
struct EngineModel {
  std::shared_ptr<engine::Model> model;
  std::shared_ptr<engine::ThreadPool> pool;
  std::shared_ptr<const data::Tokenizer> tokenizer;  // null: the model has none
  std::string template_name;                         // "" when there is no tokenizer
  // Generation stops after any of these: config eos_token_id, the tokenizer's
  // EOS and the template's end-of-turn token (deduplicated).
  std::vector<int32_t> eos_ids;
};

struct EngineModelOptions {
  std::filesystem::path model;  // .h5 export or Hugging Face checkpoint directory
  std::string tokenizer;        // tokenizer.json (or its dir) overriding the model's; "" = model's
  std::string templ =
      "auto";       // auto (the .h5's recorded one, else by tokenizer) | r1 | qwen | plain
  int threads = 0;  // 0 = all hardware threads
  std::string act_quant = "auto";  // auto | none | q8 (inference/kernels/act_quant.h)
  bool mmap = false;               // true: a .h5 used in place (MapMode::kMap)
  bool need_tokenizer = true;      // throw when no tokenizer is found
};

// Loads the model, tokenizer and template. Throws qwenqat::Error naming the
// path when the model cannot be read, the tokenizer is missing (and needed),
// its vocabulary does not fit the model's, or the template's tokens are not
// in the tokenizer.
EngineModel load_engine_model(const EngineModelOptions& o);

// Generation with the engine. Each generate() call runs all prompts as one
// batch (one KV cache slot each, prefilled together, then one forward call per
// decode step for all active sequences). Prompts are encoded with
// data::encode_prompt (BOS added when the tokenizer asks for it); sequence i
// samples with seed + i. GenerationResult.tokens excludes the final EOS;
// finished is true exactly when generation stopped at an EOS id (cut off at
// max_new_tokens or at the context limit otherwise). Not thread-safe.
class EngineGenerator : public Generator {
 public:
  // Requires m.tokenizer.
  explicit EngineGenerator(EngineModel m);
  std::vector<GenerationResult> generate(const std::vector<std::string>& prompts,
                                         const SamplingSettings& sampling, uint64_t seed) override;

 private:
  EngineModel m_;
};

// Teacher-forced logits with the engine: the whole sequence in one forward
// pass over a fresh one-slot KV cache. Not thread-safe.
class EngineLogitsSource : public LogitsSource {
 public:
  EngineLogitsSource(std::shared_ptr<engine::Model> model,
                     std::shared_ptr<engine::ThreadPool> pool);
  int64_t vocab_size() const override;
  // ids: [n] (1 <= n <= max_position_embeddings). Returns [n, vocab] floats.
  std::vector<float> logits(const std::vector<int32_t>& ids) override;

 private:
  std::shared_ptr<engine::Model> model_;
  std::shared_ptr<engine::ThreadPool> pool_;
};

}  // namespace qwenqat::experiments
