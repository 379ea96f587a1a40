// Implementation of the Qwen2 building blocks (see qwen2_layers.h): Linear and
// Embedding with quantizer hooks, RMSNorm, rotary embedding, GQA attention,
// SwiGLU MLP and the decoder layer, numerically as transformers' Qwen2.
#include "models/qwen2_layers.h"

#include <cmath>
#include <limits>

namespace qwenqat::models {

// ---- QuantizableImpl ----

void QuantizableImpl::set_quantizer(const std::string& name, std::shared_ptr<QuantizerImpl> q,
                                    std::shared_ptr<QuantizerImpl>* slot) {
  if (*slot) unregister_module(name);
  *slot = std::move(q);
  if (*slot) register_module(name, *slot);
}

void QuantizableImpl::set_weight_quantizer(std::shared_ptr<QuantizerImpl> q) {
  set_quantizer("weight_fake_quant", std::move(q), &weight_q_);
}

void QuantizableImpl::set_input_quantizer(std::shared_ptr<QuantizerImpl> q) {
  TORCH_CHECK(kind_ != Kind::kEmbedding || q == nullptr,
              "an embedding layer takes integer ids: it cannot have an input quantizer "
              "(quantize its weight with set_weight_quantizer instead)");
  set_quantizer("input_fake_quant", std::move(q), &input_q_);
}

torch::Tensor QuantizableImpl::effective_weight() {
  return (weight_q_ && weight_q_->enabled()) ? weight_q_->forward(weight_) : weight_;
}

torch::Tensor QuantizableImpl::quantize_input(const torch::Tensor& x) {
  return (input_q_ && input_q_->enabled()) ? input_q_->forward(x) : x;
}

// ---- Linear / Embedding ----

LinearImpl::LinearImpl(const LinearOptions& o) : QuantizableImpl(Kind::kLinear) {
  TORCH_CHECK(o.in_features > 0 && o.out_features > 0, "Linear: features must be positive (in ",
              o.in_features, ", out ", o.out_features, ")");
  const auto opts = o.module.tensor_options();
  weight_ = register_parameter("weight", torch::empty({o.out_features, o.in_features}, opts));
  if (o.bias) bias_ = register_parameter("bias", torch::empty({o.out_features}, opts));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  return torch::linear(quantize_input(x), effective_weight(), bias_);
}

EmbeddingImpl::EmbeddingImpl(const EmbeddingOptions& o)
    : QuantizableImpl(Kind::kEmbedding), num_embeddings_(o.num_embeddings) {
  TORCH_CHECK(o.num_embeddings > 0 && o.embedding_dim > 0, "Embedding: sizes must be positive");
  weight_ = register_parameter(
      "weight", torch::empty({o.num_embeddings, o.embedding_dim}, o.module.tensor_options()));
}

torch::Tensor EmbeddingImpl::forward(const torch::Tensor& ids) {
  TORCH_CHECK(ids.scalar_type() == torch::kInt64, "input_ids must be int64, got ",
              ids.scalar_type());
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < num_embeddings_, "token id out of range: ids span [", lo, ", ",
                hi, "] but vocab_size is ", num_embeddings_);
  }
  return torch::embedding(effective_weight(), ids);
}

// ---- RMSNorm ----

RMSNormImpl::RMSNormImpl(int64_t dim, double eps, const ModuleOptions& options) : eps_(eps) {
  weight_ = register_parameter("weight", torch::empty({dim}, options.tensor_options()));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const auto in_dtype = x.scalar_type();
  auto h = x.to(torch::kFloat32);
  auto variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * torch::rsqrt(variance + eps_);
  return weight_ * h.to(in_dtype);
}

// ---- Rotary ----

RotaryTables rotary_tables(const torch::Tensor& positions, int64_t head_dim, double theta,
                           torch::Dtype dtype) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(positions.device());
  // inv_freq [head_dim / 2], float32 as in HF.
  auto exponent = torch::arange(0, head_dim, 2, f32) / static_cast<double>(head_dim);
  auto inv_freq = 1.0 / torch::pow(theta, exponent);
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B, T, d/2]
  auto emb = torch::cat({freqs, freqs}, -1);                              // [B, T, d]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& rope) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = torch::cat({-x2, x1}, -1);
  auto cos = rope.cos.unsqueeze(1), sin = rope.sin.unsqueeze(1);  // [B, 1, T, d]
  return x * cos + rotated * sin;
}

// ---- Attention ----

AttentionImpl::AttentionImpl(const Qwen2Config& c, const ModuleOptions& o)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.dim_head()) {
  TORCH_CHECK(heads_ % kv_heads_ == 0, "num_attention_heads (", heads_,
              ") must be a multiple of num_key_value_heads (", kv_heads_, ")");
  q_proj = register_module("q_proj", Linear(LinearOptions{c.hidden_size, c.q_dim(), true, o}));
  k_proj = register_module("k_proj", Linear(LinearOptions{c.hidden_size, c.kv_dim(), true, o}));
  v_proj = register_module("v_proj", Linear(LinearOptions{c.hidden_size, c.kv_dim(), true, o}));
  o_proj = register_module("o_proj", Linear(LinearOptions{c.q_dim(), c.hidden_size, false, o}));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& h, const RotaryTables& rope,
                                     const torch::Tensor& allowed, KVCache* cache,
                                     int64_t layer) {
  const int64_t B = h.size(0), T = h.size(1);
  auto q = q_proj(h).view({B, T, heads_, head_dim_}).transpose(1, 2);     // [B, H, T, D]
  auto k = k_proj(h).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, KV, T, D]
  auto v = v_proj(h).view({B, T, kv_heads_, head_dim_}).transpose(1, 2);  // [B, KV, T, D]
  q = apply_rotary(q, rope);
  k = apply_rotary(k, rope);
  if (cache != nullptr) {
    const int64_t past = cache->length;
    auto& ck = cache->keys.at(layer);
    auto& cv = cache->values.at(layer);
    ck.narrow(2, past, T).copy_(k);
    cv.narrow(2, past, T).copy_(v);
    k = ck.narrow(2, 0, past + T);  // [B, KV, S, D]
    v = cv.narrow(2, 0, past + T);
  }
  const int64_t S = k.size(2), rep = heads_ / kv_heads_;
  if (rep > 1) {  // HF repeat_kv: query head i uses kv head i / rep
    k = k.unsqueeze(2).expand({B, kv_heads_, rep, S, head_dim_}).reshape({B, heads_, S, head_dim_});
    v = v.unsqueeze(2).expand({B, kv_heads_, rep, S, head_dim_}).reshape({B, heads_, S, head_dim_});
  }
  const double scaling = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  auto scores = torch::matmul(q, k.transpose(2, 3)) * scaling;  // [B, H, T, S]
  // Masked scores get the lowest float (not -inf) so fully masked rows (padding
  // queries) give a uniform distribution instead of NaN, as in HF.
  scores = scores.to(torch::kFloat32)
               .masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  auto probs = torch::softmax(scores, -1).to(q.scalar_type());
  auto out = torch::matmul(probs, v);  // [B, H, T, D]
  return o_proj(out.transpose(1, 2).reshape({B, T, heads_ * head_dim_}));
}

// ---- MLP / decoder layer ----

MLPImpl::MLPImpl(const Qwen2Config& c, const ModuleOptions& o) {
  gate_proj = register_module(
      "gate_proj", Linear(LinearOptions{c.hidden_size, c.intermediate_size, false, o}));
  up_proj = register_module(
      "up_proj", Linear(LinearOptions{c.hidden_size, c.intermediate_size, false, o}));
  down_proj = register_module(
      "down_proj", Linear(LinearOptions{c.intermediate_size, c.hidden_size, false, o}));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const Qwen2Config& c, const ModuleOptions& o) {
  self_attn = register_module("self_attn", Attention(c, o));
  mlp = register_module("mlp", MLP(c, o));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, o));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, o));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& h, const RotaryTables& rope,
                                        const torch::Tensor& allowed, KVCache* cache,
                                        int64_t layer) {
  auto x = h + self_attn(input_layernorm(h), rope, allowed, cache, layer);
  return x + mlp(post_attention_layernorm(x));
}

}  // namespace qwenqat::models
