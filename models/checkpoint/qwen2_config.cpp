// Implementation of qwen2_config.h.
#include "models/checkpoint/qwen2_config.h"

#include "data/util/check.h"

namespace qwenqat::models {
namespace {

template <class T>
void read_field(const Json& j, const char* name, T& out, const std::string& origin,
                bool required = false) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) {
    QWENQAT_CHECK(!required, origin, ": required field \"", name, "\" is missing");
    return;
  }
  try {
    out = it->get<T>();
  } catch (const Json::exception& e) {
    fail(origin, ": field \"", name, "\" has the wrong type (", it->type_name(), ")");
  }
}

}  // namespace

Qwen2Config Qwen2Config::from_json(const Json& j, const std::string& origin) {
  QWENQAT_CHECK(j.is_object(), origin, ": expected a JSON object");
  Qwen2Config c;
  read_field(j, "model_type", c.model_type, origin);
  QWENQAT_CHECK(c.model_type == "qwen2", origin, ": model_type \"", c.model_type,
                "\" is not supported (only \"qwen2\")");
  read_field(j, "vocab_size", c.vocab_size, origin, true);
  read_field(j, "hidden_size", c.hidden_size, origin, true);
  read_field(j, "intermediate_size", c.intermediate_size, origin, true);
  read_field(j, "num_hidden_layers", c.num_hidden_layers, origin, true);
  read_field(j, "num_attention_heads", c.num_attention_heads, origin, true);
  c.num_key_value_heads = c.num_attention_heads;
  read_field(j, "num_key_value_heads", c.num_key_value_heads, origin);
  read_field(j, "head_dim", c.head_dim, origin);
  read_field(j, "hidden_act", c.hidden_act, origin);
  read_field(j, "max_position_embeddings", c.max_position_embeddings, origin);
  read_field(j, "rms_norm_eps", c.rms_norm_eps, origin);
  read_field(j, "rope_theta", c.rope_theta, origin);
  read_field(j, "tie_word_embeddings", c.tie_word_embeddings, origin);
  read_field(j, "use_sliding_window", c.use_sliding_window, origin);
  read_field(j, "sliding_window", c.sliding_window, origin);
  read_field(j, "max_window_layers", c.max_window_layers, origin);
  read_field(j, "attention_dropout", c.attention_dropout, origin);
  read_field(j, "torch_dtype", c.torch_dtype, origin);
  if (auto it = j.find("bos_token_id"); it != j.end() && it->is_number_integer())
    c.bos_token_id = it->get<int64_t>();
  if (auto it = j.find("eos_token_id"); it != j.end()) {
    if (it->is_number_integer()) c.eos_token_id = it->get<int64_t>();
    else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer())
      c.eos_token_id = (*it)[0].get<int64_t>();
  }

  QWENQAT_CHECK(c.hidden_act == "silu", origin, ": hidden_act \"", c.hidden_act,
                "\" is not supported (only \"silu\")");
  QWENQAT_CHECK(!c.use_sliding_window, origin,
                ": use_sliding_window=true is not supported (set it to false; full attention)");
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    fail(origin, ": field \"rope_scaling\" is not supported (remove it or set it to null)");
  }
  if (auto it = j.find("use_mrope"); it != j.end() && it->is_boolean() && it->get<bool>()) {
    fail(origin, ": field \"use_mrope\"=true is not supported");
  }
  auto positive = [&](const char* name, int64_t v) {
    QWENQAT_CHECK(v > 0, origin, ": field \"", name, "\" must be positive, got ", v);
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("intermediate_size", c.intermediate_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("num_key_value_heads", c.num_key_value_heads);
  positive("max_position_embeddings", c.max_position_embeddings);
  QWENQAT_CHECK(c.head_dim > 0 || c.hidden_size % c.num_attention_heads == 0, origin,
                ": hidden_size ", c.hidden_size, " is not divisible by num_attention_heads ",
                c.num_attention_heads);
  QWENQAT_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, origin,
                ": num_attention_heads ", c.num_attention_heads,
                " is not a multiple of num_key_value_heads ", c.num_key_value_heads);
  QWENQAT_CHECK(c.dim_head() % 2 == 0, origin, ": head dimension ", c.dim_head(),
                " must be even for rotary embeddings");
  QWENQAT_CHECK(c.rms_norm_eps > 0, origin, ": field \"rms_norm_eps\" must be positive");
  QWENQAT_CHECK(c.rope_theta > 0, origin, ": field \"rope_theta\" must be positive");
  return c;
}

Qwen2Config Qwen2Config::load(const std::filesystem::path& path) {
  auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
  QWENQAT_CHECK(std::filesystem::exists(file), "no config.json at ", file.string());
  return from_json(read_json_file(file), file.string());
}

Json Qwen2Config::to_json() const {
  Json j = {
      {"architectures", {"Qwen2ForCausalLM"}},
      {"model_type", model_type},
      {"vocab_size", vocab_size},
      {"hidden_size", hidden_size},
      {"intermediate_size", intermediate_size},
      {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads},
      {"num_key_value_heads", num_key_value_heads},
      {"hidden_act", hidden_act},
      {"max_position_embeddings", max_position_embeddings},
      {"rms_norm_eps", rms_norm_eps},
      {"rope_theta", rope_theta},
      {"tie_word_embeddings", tie_word_embeddings},
      {"use_sliding_window", use_sliding_window},
      {"sliding_window", sliding_window},
      {"max_window_layers", max_window_layers},
      {"attention_dropout", attention_dropout},
      {"torch_dtype", torch_dtype},
      {"use_cache", true},
  };
  if (head_dim > 0) j["head_dim"] = head_dim;
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_id >= 0) j["eos_token_id"] = eos_token_id;
  return j;
}

int64_t Qwen2Config::num_parameters() const {
  const int64_t h = hidden_size, d = dim_head();
  const int64_t q = num_attention_heads * d, kv = num_key_value_heads * d;
  const int64_t attn = h * q + q + 2 * (h * kv + kv) + q * h;
  const int64_t mlp = 3 * h * intermediate_size;
  const int64_t layer = attn + mlp + 2 * h;
  const int64_t embed = vocab_size * h;
  return embed + num_hidden_layers * layer + h + (tie_word_embeddings ? 0 : embed);
}

}  // namespace qwenqat::models
