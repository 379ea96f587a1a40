// Implementation of Qwen2Model / Qwen2ForCausalLM (see qwen2_model.h): the
// mask (causal over cache slots + padding), the layer loop, the KV cache
// bookkeeping and the list of quantizable layers.
#include "models/qwen2_model.h"

namespace qwenqat::models {

Qwen2ModelImpl::Qwen2ModelImpl(const Qwen2Config& c, const ModuleOptions& o) : config_(c) {
  embed_tokens =
      register_module("embed_tokens", Embedding(EmbeddingOptions{c.vocab_size, c.hidden_size, o}));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c, o));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps, o));
}

torch::Tensor Qwen2ModelImpl::forward(const torch::Tensor& input_ids,
                                      const torch::Tensor& positions,
                                      const torch::Tensor& attention_mask, KVCache* cache) {
  TORCH_CHECK(input_ids.dim() == 2, "input_ids must be [batch, seq], got ", input_ids.sizes());
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  TORCH_CHECK(T > 0, "input_ids must hold at least one token per row");
  TORCH_CHECK(positions.sizes() == input_ids.sizes(), "positions must have the shape of input_ids ",
              input_ids.sizes(), ", got ", positions.sizes());
  const int64_t past = cache ? cache->length : 0;
  if (cache != nullptr) {
    TORCH_CHECK(cache->batch == B, "KV cache was made for batch ", cache->batch, ", got batch ", B);
    TORCH_CHECK(static_cast<int64_t>(cache->keys.size()) == config_.num_hidden_layers,
                "KV cache has ", cache->keys.size(), " layers, the model ",
                config_.num_hidden_layers);
    TORCH_CHECK(past + T <= cache->max_len, "context limit exceeded: ", past, " cached + ", T,
                " new tokens > KV cache max_len ", cache->max_len,
                " (make the cache larger or start a new one)");
  }
  const int64_t S = past + T;
  const auto dev = input_ids.device();
  // allowed [B or 1, 1, T, S]: key slot j is visible to query i iff j <= past + i.
  auto key_slots = torch::arange(S, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  auto query_slots = torch::arange(past, S, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  auto allowed = key_slots.unsqueeze(0).le(query_slots.unsqueeze(1)).view({1, 1, T, S});
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B &&
                    attention_mask.size(1) == S,
                "attention_mask must be [batch, cached + new tokens] = [", B, ", ", S, "], got ",
                attention_mask.sizes());
    allowed = allowed.logical_and(attention_mask.to(dev).ne(0).view({B, 1, 1, S}));
  }
  auto h = embed_tokens(input_ids);  // [B, T, hidden]
  const auto rope =
      rotary_tables(positions.to(dev), config_.dim_head(), config_.rope_theta, h.scalar_type());
  for (size_t i = 0; i < layers->size(); ++i) {
    h = layers[i]->as<DecoderLayer>()->forward(h, rope, allowed, cache, static_cast<int64_t>(i));
  }
  if (cache != nullptr) cache->length = S;
  return norm(h);
}

Qwen2ForCausalLMImpl::Qwen2ForCausalLMImpl(const Qwen2Config& c, const ModuleOptions& o)
    : config_(c), options_(o) {
  model = register_module("model", Qwen2Model(c, o));
  if (!c.tie_word_embeddings) {
    lm_head = register_module("lm_head", Linear(LinearOptions{c.hidden_size, c.vocab_size, false, o}));
  }
}

torch::Tensor Qwen2ForCausalLMImpl::output_weight() {
  return lm_head ? lm_head->effective_weight() : model->embed_tokens->effective_weight();
}

torch::Tensor Qwen2ForCausalLMImpl::forward(const torch::Tensor& input_ids,
                                            const torch::Tensor& positions,
                                            const torch::Tensor& attention_mask,
                                            KVCache* cache) {
  auto h = model(input_ids, positions, attention_mask, cache);  // [B, T, hidden]
  auto logits = lm_head ? lm_head(h) : torch::linear(h, output_weight());
  return logits.to(torch::kFloat32);  // [B, T, vocab]
}

std::vector<std::pair<std::string, QuantizableLayer>> Qwen2ForCausalLMImpl::quantizable_layers() {
  std::vector<std::pair<std::string, QuantizableLayer>> out;
  out.emplace_back("model.embed_tokens", model->embed_tokens.ptr());
  for (size_t i = 0; i < model->layers->size(); ++i) {
    auto layer = model->layers[i]->as<DecoderLayer>();
    const std::string p = "model.layers." + std::to_string(i) + ".";
    out.emplace_back(p + "self_attn.q_proj", layer->self_attn->q_proj.ptr());
    out.emplace_back(p + "self_attn.k_proj", layer->self_attn->k_proj.ptr());
    out.emplace_back(p + "self_attn.v_proj", layer->self_attn->v_proj.ptr());
    out.emplace_back(p + "self_attn.o_proj", layer->self_attn->o_proj.ptr());
    out.emplace_back(p + "mlp.gate_proj", layer->mlp->gate_proj.ptr());
    out.emplace_back(p + "mlp.up_proj", layer->mlp->up_proj.ptr());
    out.emplace_back(p + "mlp.down_proj", layer->mlp->down_proj.ptr());
  }
  if (lm_head) out.emplace_back("lm_head", lm_head.ptr());
  return out;
}

KVCache Qwen2ForCausalLMImpl::make_cache(int64_t batch, int64_t max_len) const {
  return KVCache(config_, batch, max_len, options_.tensor_options());
}

bool is_checkpoint_parameter(const std::string& name) {
  return name.find("_fake_quant.") == std::string::npos;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.named_parameters()) {
    if (is_checkpoint_parameter(p.key())) n += p.value().numel();
  }
  return n;
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  TORCH_CHECK(attention_mask.dim() == 2, "attention_mask must be [batch, seq], got ",
              attention_mask.sizes());
  auto m = attention_mask.ne(0);
  auto pos = m.to(torch::kInt64).cumsum(-1) - 1;
  return pos.masked_fill(m.logical_not(), 1);
}

}  // namespace qwenqat::models
