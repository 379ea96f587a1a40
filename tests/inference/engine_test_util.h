// Helpers for the engine tests: random tiny Qwen2 models held in memory
// (float, or with every linear quantized and packed) and logit comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "data/util/half.h"
#include "export/format/packed_tensor.h"
#include "inference/weights.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::engine::testing {

inline models::Qwen2Config tiny_config(bool tied = false) {
  models::Qwen2Config c;
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = tied;
  return c;
}

inline std::vector<float> random_vector(int64_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// The names and shapes of every linear weight of a Qwen2 model.
inline std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> linear_shapes(
    const models::Qwen2Config& c) {
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> out;
  const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), K = c.kv_dim();
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back({p + "self_attn.q_proj.weight", {Q, H}});
    out.push_back({p + "self_attn.k_proj.weight", {K, H}});
    out.push_back({p + "self_attn.v_proj.weight", {K, H}});
    out.push_back({p + "self_attn.o_proj.weight", {H, Q}});
    out.push_back({p + "mlp.gate_proj.weight", {I, H}});
    out.push_back({p + "mlp.up_proj.weight", {I, H}});
    out.push_back({p + "mlp.down_proj.weight", {H, I}});
  }
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", {c.vocab_size, H}});
  return out;
}

// A random model. With `spec`, every linear (and lm_head) is quantized with
// quant::quantize_matrix; `packed` selects whether the source holds the
// packed weights or their dequantized float values (the fake-quant model).
inline std::shared_ptr<MemorySource> random_model(const models::Qwen2Config& c, uint32_t seed,
                                                  const quant::QuantSpec* spec = nullptr,
                                                  bool packed = false) {
  std::mt19937 rng(seed);
  auto src = std::make_shared<MemorySource>(c, "random test model");
  const int64_t H = c.hidden_size;
  src->add_float("model.embed_tokens.weight", {c.vocab_size, H},
                 random_vector(c.vocab_size * H, 0.5f, rng));
  for (auto& [name, shape] : linear_shapes(c)) {
    auto w = random_vector(shape.first * shape.second, 0.08f, rng);
    if (!spec) {
      src->add_float(name, {shape.first, shape.second}, std::move(w));
      continue;
    }
    auto q = quant::quantize_matrix(w.data(), shape.first, shape.second, *spec);
    if (packed) {
      src->add_packed(name, format::pack(q));
    } else {
      std::vector<float> dq(w.size());
      quant::dequantize_matrix(q, dq.data());
      src->add_float(name, {shape.first, shape.second}, std::move(dq));
    }
  }
  auto ones_ish = [&](int64_t n) {
    auto v = random_vector(n, 0.1f, rng);
    for (auto& x : v) x += 1.0f;
    return v;
  };
  src->add_float("model.norm.weight", {H}, ones_ish(H));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    src->add_float(p + "input_layernorm.weight", {H}, ones_ish(H));
    src->add_float(p + "post_attention_layernorm.weight", {H}, ones_ish(H));
    src->add_float(p + "self_attn.q_proj.bias", {c.q_dim()}, random_vector(c.q_dim(), 0.1f, rng));
    src->add_float(p + "self_attn.k_proj.bias", {c.kv_dim()}, random_vector(c.kv_dim(), 0.1f, rng));
    src->add_float(p + "self_attn.v_proj.bias", {c.kv_dim()}, random_vector(c.kv_dim(), 0.1f, rng));
  }
  return src;
}

// random_model's float model with its embedding and linear weights replaced
// by random bf16 values, held as bf16 (as a bf16 checkpoint holds them) or as
// their float32 values: the same model either way.
inline std::shared_ptr<MemorySource> random_bf16_model(const models::Qwen2Config& c, uint32_t seed,
                                                       bool as_bf16) {
  auto src = random_model(c, seed);
  std::mt19937 rng(seed + 1000);
  const auto put = [&](const std::string& name, int64_t rows, int64_t cols, float scale) {
    std::vector<uint16_t> b;
    std::vector<float> f;
    for (float x : random_vector(rows * cols, scale, rng)) {
      b.push_back(f32_to_bf16(x));
      f.push_back(bf16_to_f32(b.back()));
    }
    if (as_bf16) {
      src->add_bf16(name, {rows, cols}, std::move(b));
    } else {
      src->add_float(name, {rows, cols}, std::move(f));
    }
  };
  put("model.embed_tokens.weight", c.vocab_size, c.hidden_size, 0.5f);
  for (auto& [name, shape] : linear_shapes(c)) put(name, shape.first, shape.second, 0.08f);
  return src;
}

// max |a - b| <= rel * max |b|, reported with the worst index.
inline void expect_close_rel(const float* a, const float* b, int64_t n, double rel,
                             const std::string& what) {
  double max_ref = 0.0, max_diff = 0.0;
  int64_t worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(b[i])));
    const double d = std::abs(static_cast<double>(a[i]) - b[i]);
    if (d > max_diff) {
      max_diff = d;
      worst = i;
    }
  }
  EXPECT_LE(max_diff, rel * max_ref)
      << what << ": worst index " << worst << " got " << a[worst] << " expected " << b[worst];
}

}  // namespace qwenqat::engine::testing
