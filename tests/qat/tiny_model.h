// Tiny Qwen2 models for the QAT tests (hidden 64, 2 layers, vocab 96): fast to
// build, random but seeded weights, and input ids/positions for a forward.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "models/checkpoint_io.h"
#include "models/qwen2_model.h"

namespace qwenqat::qat::testing {

inline models::Qwen2Config tiny_config(bool tied = false) {
  models::Qwen2Config c;
  c.vocab_size = 96;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  c.tie_word_embeddings = tied;
  return c;
}

inline models::Qwen2ForCausalLM tiny_model(uint64_t seed = 1, bool tied = false,
                                           torch::Dtype dtype = torch::kFloat32) {
  models::ModuleOptions o;
  o.dtype = dtype;
  models::Qwen2ForCausalLM m(tiny_config(tied), o);
  models::init_weights(*m, seed);
  return m;
}

// ids [2, 12] int64, seeded.
inline torch::Tensor tiny_ids(uint64_t seed = 7) {
  torch::manual_seed(seed);
  return torch::randint(96, {2, 12}, torch::kLong);
}

inline torch::Tensor tiny_logits(models::Qwen2ForCausalLMImpl& m, const torch::Tensor& ids) {
  torch::NoGradGuard ng;
  const auto pos = torch::arange(ids.size(1), torch::kLong).unsqueeze(0).expand_as(ids);
  return m.forward(ids, pos.contiguous());
}

}  // namespace qwenqat::qat::testing
