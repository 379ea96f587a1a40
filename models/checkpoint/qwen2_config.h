// Qwen2Config: the Hugging Face `config.json` of a Qwen2ForCausalLM model, with
// Hugging Face field names and defaults (transformers' Qwen2Config). Torch-free:
// shared by the LibTorch model, the exporter and the native engine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "data/util/json_io.h"

namespace qwenqat::models {

struct Qwen2Config {
  int64_t vocab_size = 151936;
  int64_t hidden_size = 4096;
  int64_t intermediate_size = 22016;
  int64_t num_hidden_layers = 32;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 32;  // HF: defaults to num_attention_heads
  int64_t head_dim = 0;              // 0: hidden_size / num_attention_heads
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 32768;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool use_sliding_window = false;
  int64_t sliding_window = 4096;
  int64_t max_window_layers = 28;
  double attention_dropout = 0.0;
  int64_t bos_token_id = -1;  // -1: absent
  int64_t eos_token_id = -1;
  std::string torch_dtype = "float32";
  std::string model_type = "qwen2";

  int64_t dim_head() const { return head_dim > 0 ? head_dim : hidden_size / num_attention_heads; }
  int64_t q_dim() const { return num_attention_heads * dim_head(); }
  int64_t kv_dim() const { return num_key_value_heads * dim_head(); }

  // Parses and validates; `origin` names the file in error messages.
  // Unknown fields are ignored; unsupported features (sliding window actually
  // used, rope_scaling, other activations/model types) throw naming the field.
  static Qwen2Config from_json(const Json& j, const std::string& origin = "config.json");
  static Qwen2Config load(const std::filesystem::path& path);  // file or model dir
  Json to_json() const;  // Hugging Face layout, loadable by transformers

  // Total parameter count (embeddings, all layers, norms, lm_head unless tied).
  int64_t num_parameters() const;
};

}  // namespace qwenqat::models
