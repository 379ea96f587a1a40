// Helpers for the LibTorch model tests: tiny configs, an independent float64
// reference forward computed straight from checkpoint tensors, and logits
// comparison.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "models/checkpoint/qwen2_config.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::models::testing {

// A small random-shape config: hidden = heads * head_dim.
inline Qwen2Config tiny_config(int64_t heads, int64_t kv_heads, bool tied, int64_t layers = 2,
                               int64_t head_dim = 8, int64_t vocab = 97) {
  Qwen2Config c;
  c.vocab_size = vocab;
  c.num_attention_heads = heads;
  c.num_key_value_heads = kv_heads;
  c.hidden_size = heads * head_dim;
  c.intermediate_size = 3 * c.hidden_size - 4;
  c.num_hidden_layers = layers;
  c.tie_word_embeddings = tied;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 512;
  return c;
}

// Checkpoint tensor as float64 [shape].
inline torch::Tensor tensor64(const Checkpoint& ck, const std::string& name) {
  const TensorView& t = ck.get(name);
  auto v = to_f32(t);
  return torch::from_blob(v.data(), t.shape, torch::kFloat32).to(torch::kFloat64).clone();
}

inline torch::Tensor rms64(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return w * x / torch::sqrt(x.pow(2).mean(-1, true) + eps);
}

// Qwen2ForCausalLM semantics in float64, written independently of models/:
// per-head loops, rotary angles from std::pow in double. ids: one sequence.
// Returns logits [T, vocab] float64.
inline torch::Tensor reference_logits(const Checkpoint& ck, const Qwen2Config& c,
                                      const std::vector<int64_t>& ids) {
  const int64_t T = ids.size(), d = c.dim_head(), H = c.num_attention_heads;
  const int64_t group = H / c.num_key_value_heads;
  auto embed = tensor64(ck, "model.embed_tokens.weight");
  auto h = embed.index_select(0, torch::tensor(ids, torch::kInt64));  // [T, hidden]
  // cos/sin [T, d/2]
  auto cos = torch::empty({T, d / 2}, torch::kFloat64), sin = torch::empty({T, d / 2}, torch::kFloat64);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < d / 2; ++i) {
      const double angle = double(t) / std::pow(c.rope_theta, double(2 * i) / double(d));
      cos[t][i] = std::cos(angle);
      sin[t][i] = std::sin(angle);
    }
  }
  auto rope = [&](const torch::Tensor& x) {  // x [T, d]
    auto a = x.narrow(1, 0, d / 2), b = x.narrow(1, d / 2, d / 2);
    return torch::cat({a * cos - b * sin, b * cos + a * sin}, 1);
  };
  auto causal = torch::ones({T, T}, torch::kBool).tril();
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    auto w = [&](const std::string& n) { return tensor64(ck, p + n); };
    auto x = rms64(h, w("input_layernorm.weight"), c.rms_norm_eps);
    auto q = x.matmul(w("self_attn.q_proj.weight").t()) + w("self_attn.q_proj.bias");
    auto k = x.matmul(w("self_attn.k_proj.weight").t()) + w("self_attn.k_proj.bias");
    auto v = x.matmul(w("self_attn.v_proj.weight").t()) + w("self_attn.v_proj.bias");
    std::vector<torch::Tensor> heads;
    for (int64_t hq = 0; hq < H; ++hq) {
      const int64_t hk = hq / group;
      auto qh = rope(q.narrow(1, hq * d, d)), kh = rope(k.narrow(1, hk * d, d));
      auto s = qh.matmul(kh.t()) / std::sqrt(double(d));
      s = s.masked_fill(causal.logical_not(), -INFINITY);
      heads.push_back(torch::softmax(s, 1).matmul(v.narrow(1, hk * d, d)));
    }
    h = h + torch::cat(heads, 1).matmul(w("self_attn.o_proj.weight").t());
    x = rms64(h, w("post_attention_layernorm.weight"), c.rms_norm_eps);
    auto g = x.matmul(w("mlp.gate_proj.weight").t());
    auto u = x.matmul(w("mlp.up_proj.weight").t());
    h = h + (g * torch::sigmoid(g) * u).matmul(w("mlp.down_proj.weight").t());
  }
  h = rms64(h, tensor64(ck, "model.norm.weight"), c.rms_norm_eps);
  auto out_w = c.tie_word_embeddings ? embed : tensor64(ck, "lm_head.weight");
  return h.matmul(out_w.t());
}

// max |a - b| / max |b| (b: the reference).
inline double relative_max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
  return (a64 - b64).abs().max().item<double>() / b64.abs().max().item<double>();
}

}  // namespace qwenqat::models::testing
