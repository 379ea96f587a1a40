// Random packed / float / bf16 weights of a config's shapes (random_weights.h).
#include "inference/random_weights.h"

#include <cstring>
#include <vector>

#include "data/util/half.h"
#include "inference/sampler.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::engine {
namespace {

format::PackedMatrix random_packed(int64_t rows, int64_t cols, const quant::QuantSpec& spec,
                                   Rng& rng) {
  format::PackedMatrix m;
  m.spec = spec;
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = format::packed_row_bytes(cols, spec.bits);
  m.data.resize(static_cast<size_t>(rows * m.row_bytes));
  size_t i = 0;
  for (; i + 8 <= m.data.size(); i += 8) {
    const uint64_t r = rng.next();
    std::memcpy(&m.data[i], &r, 8);
  }
  for (; i < m.data.size(); ++i) m.data[i] = static_cast<uint8_t>(rng.next());
  const int64_t groups = rows * spec.groups_per_row(cols);
  const float base = 0.04f / static_cast<float>(spec.levels());
  m.scales.resize(static_cast<size_t>(groups));
  for (auto& s : m.scales) s = f32_to_fp16(base * (0.5f + rng.uniform()));
  if (!spec.symmetric) {
    m.offsets.resize(static_cast<size_t>(groups));
    for (auto& o : m.offsets) o = f32_to_fp16(-0.02f * (0.5f + rng.uniform()));
  }
  return m;
}

std::vector<float> random_floats(int64_t n, float scale, Rng& rng) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = (rng.uniform() * 2.0f - 1.0f) * scale;
  return v;
}

}  // namespace

std::shared_ptr<MemorySource> random_weight_source(const models::Qwen2Config& c,
                                                   const std::string& quant, uint64_t seed) {
  auto src = std::make_shared<MemorySource>(c, "random weights (" + quant + ")");
  Rng rng(seed);
  const bool f32 = quant == "f32", bf16 = quant == "bf16";
  quant::QuantSpec spec;
  if (!f32 && !bf16) spec = quant::parse_spec(quant);
  auto add_matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    if (f32) {
      src->add_float(name, {rows, cols}, random_floats(rows * cols, 0.03f, rng));
    } else if (bf16) {
      std::vector<uint16_t> b(static_cast<size_t>(rows * cols));
      for (auto& x : b) x = f32_to_bf16((rng.uniform() * 2.0f - 1.0f) * 0.03f);
      src->add_bf16(name, {rows, cols}, std::move(b));
    } else {
      spec.validate(cols, name);
      src->add_packed(name, random_packed(rows, cols, spec, rng));
    }
  };
  const int64_t H = c.hidden_size, I = c.intermediate_size, Q = c.q_dim(), K = c.kv_dim();
  add_matrix("model.embed_tokens.weight", c.vocab_size, H);
  if (!c.tie_word_embeddings) add_matrix("lm_head.weight", c.vocab_size, H);
  src->add_float("model.norm.weight", {H}, std::vector<float>(H, 1.0f));
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add_matrix(p + "self_attn.q_proj.weight", Q, H);
    add_matrix(p + "self_attn.k_proj.weight", K, H);
    add_matrix(p + "self_attn.v_proj.weight", K, H);
    add_matrix(p + "self_attn.o_proj.weight", H, Q);
    add_matrix(p + "mlp.gate_proj.weight", I, H);
    add_matrix(p + "mlp.up_proj.weight", I, H);
    add_matrix(p + "mlp.down_proj.weight", H, I);
    src->add_float(p + "input_layernorm.weight", {H}, std::vector<float>(H, 1.0f));
    src->add_float(p + "post_attention_layernorm.weight", {H}, std::vector<float>(H, 1.0f));
    src->add_float(p + "self_attn.q_proj.bias", {Q}, random_floats(Q, 0.1f, rng));
    src->add_float(p + "self_attn.k_proj.bias", {K}, random_floats(K, 0.1f, rng));
    src->add_float(p + "self_attn.v_proj.bias", {K}, random_floats(K, 0.1f, rng));
  }
  return src;
}

}  // namespace qwenqat::engine
