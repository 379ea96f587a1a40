// Batched generation: many prompts at once, each in its own KV cache slot,
// prefilled together and then decoded one token per sequence per step (one
// forward call per step for all active sequences, so each weight is read once
// per step for the whole batch). Stops per sequence at an EOS id, a stop
// string, max_new_tokens, or the context limit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "inference/kv_cache.h"
#include "inference/model.h"
#include "inference/sampler.h"

namespace qwenqat::engine {

struct GenerateOptions {
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;                    // sequence i uses seed sampling.seed + i
  std::vector<int32_t> eos_ids;                // generation ends after emitting one of these
  std::vector<std::string> stop_strings;       // needs `decode`
  std::function<std::string(int32_t)> decode;  // token id -> text piece
  KvDtype kv_dtype = KvDtype::kF32;
  // Context limit in tokens (prompt + generated); 0 = the model's
  // max_position_embeddings. A prompt that does not fit is an error; a
  // generation that reaches it stops with stop_reason "context".
  int64_t max_context = 0;
};

struct Generation {
  std::vector<int32_t> tokens;  // generated ids (including the final EOS if any)
  std::string text;             // decoded text when `decode` was given
  std::string stop_reason;      // "eos", "stop_string", "length" or "context"
  int64_t prompt_tokens = 0;
};

// Called for every generated token as soon as it is sampled.
using TokenCallback = std::function<void(size_t sequence, int32_t token)>;

// Wall-clock time of one generate() call (steady clock): the prompts'
// forward call, and everything after it (sampling, the callbacks, the decode
// steps) for the generated tokens of all sequences.
struct GenerateTiming {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_seconds = 0.0, decode_seconds = 0.0;
};

// Throws qwenqat::Error for an empty prompt, a prompt longer than the context
// limit, or invalid options. Not thread-safe (uses the model and the pool).
// timing, when given, is filled in.
std::vector<Generation> generate(Model& model, const std::vector<std::vector<int32_t>>& prompts,
                                 const GenerateOptions& options, ThreadPool& pool,
                                 const TokenCallback& on_token = {},
                                 GenerateTiming* timing = nullptr);

}  // namespace qwenqat::engine
