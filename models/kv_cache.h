// KVCache: the preallocated key/value cache for incremental generation with
// the LibTorch Qwen2 model. One [B, num_key_value_heads, max_len, head_dim]
// key tensor and one value tensor per layer, in the compute dtype on the
// model's device. Keys are stored after the rotary embedding.
//
// Usage: construct with the batch size and the context limit, then call
// Qwen2ForCausalLM::forward with the new tokens only; the model writes their
// k/v at slots [length, length + T) and advances `length` by T. Exceeding
// max_len throws (TORCH_CHECK) naming the limit. Not thread-safe; one cache
// per generation stream.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "models/checkpoint/qwen2_config.h"

namespace qwenqat::models {

struct KVCache {
  // opts: the model's compute dtype and device.
  KVCache(const Qwen2Config& config, int64_t batch_size, int64_t max_length,
          torch::TensorOptions opts)
      : batch(batch_size), max_len(max_length) {
    TORCH_CHECK(batch_size > 0 && max_length > 0, "KVCache: batch (", batch_size,
                ") and max_len (", max_length, ") must be positive");
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
      keys.push_back(
          torch::zeros({batch_size, config.num_key_value_heads, max_length, config.dim_head()},
                       opts));
      values.push_back(torch::zeros_like(keys.back()));
    }
  }

  // Forgets the cached tokens (the memory stays allocated).
  void reset() { length = 0; }
  int64_t remaining() const { return max_len - length; }

  int64_t batch;
  int64_t max_len;
  int64_t length = 0;                // tokens cached so far (same for every row)
  std::vector<torch::Tensor> keys;   // per layer [B, kv_heads, max_len, head_dim]
  std::vector<torch::Tensor> values;  // per layer [B, kv_heads, max_len, head_dim]
};

}  // namespace qwenqat::models
