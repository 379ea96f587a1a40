// Test helpers for the qwenqat HDF5 model file tests: a small synthetic model
// (float tensors of each dtype and packed tensors of several schemes) written
// with H5ModelWriter, with the original data kept for comparison.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "data/util/half.h"
#include "export/format/h5_model_writer.h"
#include "export/format/packed_tensor.h"

namespace qwenqat::testing {

inline const char* kTinyConfig =
    R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 64,
 "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 1,
 "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-6,
 "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16"})";
inline const char* kTinyTokenizer = R"({"version": "1.0", "model": {"type": "BPE"}})";
inline const char* kTinyTokenizerConfig = R"({"bos_token": null, "eos_token": "<eos>"})";
inline const char* kTinyQuantConfig = R"({"default": "w4g32", "lm_head": "w8c"})";

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// A float tensor as written: dtype and raw little-endian bytes.
struct FloatCase {
  models::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// The content of the synthetic model, for comparison after reading.
struct TinyModel {
  std::map<std::string, FloatCase> floats;
  std::map<std::string, quant::QuantizedMatrix> quantized;
  std::map<std::string, format::PackedMatrix> packed;
};

inline FloatCase make_float(models::DType dtype, std::vector<int64_t> shape, uint32_t seed) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  const auto v = random_floats(n, seed);
  FloatCase c{dtype, shape, {}};
  if (dtype == models::DType::kF32) {
    c.bytes.resize(n * 4);
    std::memcpy(c.bytes.data(), v.data(), n * 4);
  } else {
    c.bytes.resize(n * 2);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = dtype == models::DType::kF16 ? f32_to_fp16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(c.bytes.data() + 2 * i, &h, 2);
    }
  }
  return c;
}

// Builds the synthetic model (deterministic for a given seed).
inline TinyModel make_tiny_model(uint32_t seed = 1) {
  TinyModel m;
  m.floats["model.norm.weight"] = make_float(models::DType::kF32, {64}, seed + 1);
  m.floats["model.layers.0.input_layernorm.weight"] =
      make_float(models::DType::kF16, {64}, seed + 2);
  m.floats["model.layers.0.self_attn.q_proj.bias"] =
      make_float(models::DType::kBF16, {64}, seed + 3);
  m.floats["model.layers.0.post_attention_layernorm.weight"] =
      make_float(models::DType::kBF16, {2, 4, 8}, seed + 4);
  struct Q {
    const char* name;
    int64_t rows, cols;
    const char* scheme;
  };
  const Q qs[] = {
      {"model.embed_tokens.weight", 64, 64, "w8c"},
      {"model.layers.0.self_attn.q_proj.weight", 64, 64, "w4g32"},
      {"model.layers.0.self_attn.k_proj.weight", 32, 64, "w4g16a"},
      {"model.layers.0.self_attn.v_proj.weight", 32, 40, "w4g8"},  // 4-bit chunk padding
      {"model.layers.0.self_attn.o_proj.weight", 64, 64, "w2g16"},
      {"model.layers.0.mlp.gate_proj.weight", 96, 64, "w3g32a"},
      {"model.layers.0.mlp.up_proj.weight", 96, 64, "w8g32a"},
      {"model.layers.0.mlp.down_proj.weight", 64, 96, "w6c"},
      {"lm_head.weight", 64, 64, "w8c"},
  };
  uint32_t s = seed + 100;
  for (const Q& q : qs) {
    const auto w = random_floats(size_t(q.rows * q.cols), ++s, 0.05f);
    m.quantized[q.name] =
        quant::quantize_matrix(w.data(), q.rows, q.cols, quant::parse_spec(q.scheme));
    m.packed[q.name] = format::pack(m.quantized[q.name]);
  }
  return m;
}

// Writes `m` (and the tiny texts) to `path`.
inline void write_tiny_model(const TinyModel& m, const std::filesystem::path& path,
                             format::H5WriterOptions options = {}) {
  format::H5ModelWriter w(path, options);
  w.set_config_json(kTinyConfig);
  w.set_tokenizer_json(kTinyTokenizer);
  w.set_tokenizer_config_json(kTinyTokenizerConfig);
  w.set_quantization_config_json(kTinyQuantConfig);
  w.set_prompt_template("deepseek-r1");
  for (const auto& [name, f] : m.floats) w.add_float_tensor(name, f.dtype, f.shape, f.bytes);
  for (const auto& [name, p] : m.packed) w.add_packed_tensor(name, format::view_of(p));
  w.commit();
}

}  // namespace qwenqat::testing
