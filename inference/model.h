// The Qwen2ForCausalLM forward pass in float32 activations over weights from a
// WeightSource (float or packed linears): embedding, per layer RMSNorm ->
// q/k/v (with biases) -> rotary (rotate-half) -> grouped-query attention over
// the KV cache -> o_proj -> residual -> RMSNorm -> SwiGLU MLP -> residual, then
// the final norm and lm_head (or the tied embedding).
//
// One forward() call advances any number of sequences by any number of tokens
// each (prefill and batched decode are the same call): the new tokens of all
// sequences are stacked into one activation matrix, so every weight is read
// once per call for the whole batch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "inference/kernels/aligned.h"
#include "inference/kv_cache.h"
#include "inference/thread_pool.h"
#include "inference/weights.h"

namespace qwenqat::engine {

// New tokens for one sequence (KV cache slot). Its positions continue from
// the slot's current length.
struct SequenceStep {
  int64_t slot = 0;
  std::span<const int32_t> tokens;
};

class Model {
 public:
  // Builds every layer from `source` (kept alive by the model: packed weights
  // are used in place). Throws qwenqat::Error naming the missing or
  // mis-shaped tensor.
  explicit Model(std::shared_ptr<const WeightSource> source);

  const models::Qwen2Config& config() const { return config_; }
  const WeightSource& source() const { return *source_; }
  // Weight bytes one forward step reads (all linears incl. lm_head, plus one
  // embedding row per token, ignored here as negligible).
  uint64_t weight_bytes_per_step() const;
  // e.g. "w4g32" or "f32", or "mixed: w4g32 (196), f32 (1)".
  std::string describe_schemes() const;

  // Runs the steps, appends their keys/values to `cache` and writes logits:
  // logits [steps.size(), vocab] for the last token of each step, or, when
  // all_positions, [total tokens, vocab] in step order. Throws (before any
  // change to the cache) on a bad token id, a bad or repeated slot, or a
  // sequence that would pass the cache's context limit.
  // Not thread-safe (uses the pool and the model's scratch buffers).
  void forward(const std::vector<SequenceStep>& steps, KvCache& cache, ThreadPool& pool,
               std::vector<float>& logits, bool all_positions = false);

  // The kernel set used by forward (defaults to active_isa()).
  void set_isa(KernelIsa isa) { isa_ = isa; }
  KernelIsa isa() const { return isa_; }
  // Activations of the linears (kernels/act_quant.h): default kAuto, the
  // trained numerics (per-token int8 where the export records activation
  // bits, float elsewhere); kNone forces float; kQ8 forces Q8 blocks.
  void set_act_quant(ActQuant a) { act_quant_ = a; }
  ActQuant act_quant() const { return act_quant_; }

 private:
  struct Layer {
    std::vector<float> input_layernorm, post_attention_layernorm;  // [hidden]
    Linear q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
  };
  // out [T, QD] = attention of q [T, QD] over the cache (rows already
  // stored) for layer; prompt_kv: scratch the prompts' fp16 keys and values
  // are converted into (grown as needed, kept across layers).
  void attention(const std::vector<SequenceStep>& steps, const std::vector<int64_t>& first_row,
                 int64_t layer, const KvCache& cache, ThreadPool& pool, const float* q, float* out,
                 AlignedVector<float>& prompt_kv) const;

  std::shared_ptr<const WeightSource> source_;
  models::Qwen2Config config_;
  KernelIsa isa_;
  ActQuant act_quant_ = ActQuant::kAuto;
  Linear embed_tokens_, lm_head_;
  bool tied_ = false;
  std::vector<Layer> layers_;
  std::vector<float> norm_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
};

}  // namespace qwenqat::engine
