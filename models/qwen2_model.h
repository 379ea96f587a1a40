// The LibTorch Qwen2 language model: Qwen2Model (embeddings, decoder layers,
// final norm) and Qwen2ForCausalLM (+ lm_head, or the tied embedding),
// registered under Hugging Face names so named_parameters() yields exactly the
// checkpoint keys:
//   model.embed_tokens.weight                      [vocab, hidden]
//   model.layers.N.self_attn.{q,k,v}_proj.{weight,bias}, o_proj.weight
//   model.layers.N.mlp.{gate,up,down}_proj.weight
//   model.layers.N.{input,post_attention}_layernorm.weight
//   model.norm.weight                              [hidden]
//   lm_head.weight                                 [vocab, hidden] (absent if tied)
// plus, once QAT attaches quantizers, "<layer>.weight_fake_quant.*" /
// "<layer>.input_fake_quant.*" (never part of a checkpoint; see
// is_checkpoint_parameter()).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "models/kv_cache.h"
#include "models/qwen2_layers.h"

namespace qwenqat::models {

class Qwen2ModelImpl : public torch::nn::Module {
 public:
  Qwen2ModelImpl(const Qwen2Config& config, const ModuleOptions& options);
  // Final-normed hidden states [B, T, hidden] in the compute dtype; arguments
  // as Qwen2ForCausalLMImpl::forward.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& positions,
                        const torch::Tensor& attention_mask = {}, KVCache* cache = nullptr);

  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};

 private:
  Qwen2Config config_;
};
TORCH_MODULE(Qwen2Model);

class Qwen2ForCausalLMImpl : public torch::nn::Module {
 public:
  // Parameters are created uninitialized in options.dtype on options.device
  // (nothing is touched, so a 1.78 B model costs no memory until loaded); fill
  // them with load_weights() or init_weights() (models/checkpoint_io.h).
  // options.device may be torch::kMeta to count parameters without memory.
  Qwen2ForCausalLMImpl(const Qwen2Config& config, const ModuleOptions& options = {});

  // input_ids [B, T] int64, positions [B, T] int64 (position ids of the new
  // tokens: arange for unpadded sequences, cumsum(mask) - 1 with left padding),
  // attention_mask [B, S] (1 = real token, 0 = padding; bool or any integer /
  // float dtype; S = cache->length + T with a cache, T without; undefined =
  // all ones), cache: nullptr for full-sequence training, or a KVCache whose
  // `length` tokens precede these T (the call appends and advances length;
  // throws if cache->length + T > cache->max_len).
  // Returns logits [B, T, vocab] in float32 (lm_head runs in the compute
  // dtype and the result is converted), on the model's device.
  // Attention is causal over cache slots plus the padding mask.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& positions,
                        const torch::Tensor& attention_mask = {}, KVCache* cache = nullptr);

  // Every layer QAT can quantize, with the Hugging Face name of its weight's
  // prefix, in model order: "model.embed_tokens", then per layer N
  // "model.layers.N.self_attn.{q,k,v,o}_proj", "model.layers.N.mlp.{gate,up,down}_proj",
  // then "lm_head" (only when untied; a tied lm_head uses model.embed_tokens'
  // effective, possibly quantized, weight). The pointers alias the modules.
  std::vector<std::pair<std::string, QuantizableLayer>> quantizable_layers();

  // lm_head's weight: lm_head.weight, or the embedding's effective weight when tied.
  torch::Tensor output_weight();

  const Qwen2Config& config() const { return config_; }
  const ModuleOptions& options() const { return options_; }
  // A KV cache for this model's dtype and device.
  KVCache make_cache(int64_t batch, int64_t max_len) const;

  Qwen2Model model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  Qwen2Config config_;
  ModuleOptions options_;
};
TORCH_MODULE(Qwen2ForCausalLM);

// True for names that belong in a Hugging Face checkpoint (false for the
// quantizers' own parameters, "*_fake_quant.*").
bool is_checkpoint_parameter(const std::string& name);

// Number of checkpoint parameters (elements) of `module`.
int64_t count_parameters(const torch::nn::Module& module);

// positions [B, T] for a batch with attention_mask [B, T] (1 = token, 0 =
// padding, any side): cumsum(mask) - 1, padding slots set to 1 (HF generate's
// convention; their value does not matter since they are masked out).
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

}  // namespace qwenqat::models
