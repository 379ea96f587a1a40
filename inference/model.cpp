// Model: building the layers from a WeightSource and the forward pass.
#include "inference/model.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "data/util/check.h"
#include "inference/kernels/aligned.h"
#include "inference/kernels/attention.h"
#include "inference/kernels/elementwise.h"

namespace qwenqat::engine {
namespace {

std::vector<float> vector_f32(const WeightSource& src, const std::string& name, int64_t n) {
  const SourceTensor t = src.get(name);
  QWENQAT_CHECK(!t.quantized, "tensor ", name, " in ", src.origin(),
                " is quantized but the engine expects a float vector there");
  QWENQAT_CHECK(t.shape.size() == 1 && t.shape[0] == n, "tensor ", name, " in ", src.origin(),
                " should have shape [", n, "] according to config.json");
  return models::to_f32(t.view);
}

// out[t] = w * (x[t] / sqrt(mean(x[t]^2) + eps)) for rows t of [rows, dim].
// The squares are summed in double in 8 interleaved partial sums (one
// sequential double chain costs ~4 cycles per element).
void rms_norm(const float* x, int64_t rows, int64_t dim, const std::vector<float>& w, float eps,
              float* out) {
  for (int64_t t = 0; t < rows; ++t) {
    const float* xr = x + t * dim;
    double p[8] = {};
    int64_t i = 0;
    for (; i + 8 <= dim; i += 8)
      for (int j = 0; j < 8; ++j) p[j] += static_cast<double>(xr[i + j]) * xr[i + j];
    double ss = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float var = static_cast<float>(ss / static_cast<double>(dim));
    const float rs = 1.0f / std::sqrt(var + eps);
    float* o = out + t * dim;
    for (int64_t i = 0; i < dim; ++i) o[i] = w[i] * (xr[i] * rs);
  }
}

// Rotate-half rotary embedding in place on `heads` heads of dim d at x.
void apply_rope(float* x, int64_t heads, int64_t d, const float* cos, const float* sin) {
  const int64_t half = d / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * d;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] - b * sin[i];
      v[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

// Prompt rows attended together (Model::attention): a block's key and value
// rows are read once for its rows. attend on random 2000-position rows, one
// core, Zen 5: 1 row at a time 0.077 s per (layer, kv head), 2 rows 0.054,
// 8 rows 0.051, 16 rows 0.052.
constexpr int64_t kQueryBlock = 8;

// Rows of row-wise work (norms, rotary, cache stores) are split over the
// pool from this many (a parallel_for round trip costs ~1 us, a row of the
// real model's norm well under that).
constexpr int64_t kParallelRows = 4;

// One task of Model::attention: query rows [j0, j0 + kQueryBlock) of
// sequence s (those it has) against kv head g, for the group's query heads
// [h0, h1).
struct AttentionTask {
  int64_t s, g, j0, h0, h1;
};

// The tasks of one attention call: one per (sequence, kv head, block of
// kQueryBlock query rows), the blocks of a prompt last first (they see the
// most positions: the longest tasks start first), so a prompt keeps every
// thread busy however few kv heads it has; with fewer tasks than threads
// (decode of a few sequences) each task's group of query heads is split as
// well. A head's result depends only on its own inputs (attend,
// attend_masked), so not on the split either.
std::vector<AttentionTask> attention_tasks(const std::vector<SequenceStep>& steps, int64_t kv_heads,
                                           int64_t group, int threads) {
  std::vector<AttentionTask> tasks;
  for (int64_t s = 0; s < static_cast<int64_t>(steps.size()); ++s) {
    const int64_t n = static_cast<int64_t>(steps[s].tokens.size());
    for (int64_t g = 0; g < kv_heads; ++g)
      for (int64_t j0 = (n - 1) / kQueryBlock * kQueryBlock; j0 >= 0; j0 -= kQueryBlock)
        tasks.push_back({s, g, j0, 0, group});
  }
  const int64_t whole = static_cast<int64_t>(tasks.size());
  if (whole >= threads) return tasks;
  const int64_t parts = std::min(group, (threads + whole - 1) / whole);
  std::vector<AttentionTask> split;
  for (const AttentionTask& t : tasks)
    for (int64_t i = 0; i < parts; ++i)
      split.push_back({t.s, t.g, t.j0, group * i / parts, group * (i + 1) / parts});
  return split;
}

// g[i] = silu(g[i]) * u[i] for i < n, in fixed chunks over the pool (the
// exps of a batch or a prompt are several million per step).
void swiglu_parallel(float* g, const float* u, int64_t n, ThreadPool& pool, KernelIsa isa) {
  constexpr int64_t kChunk = 4096;
  pool.parallel_for((n + kChunk - 1) / kChunk, [&](int64_t c) {
    const int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
    swiglu(g + begin, u + begin, end - begin, isa);
  });
}

}  // namespace

Model::Model(std::shared_ptr<const WeightSource> source)
    : source_(std::move(source)), config_(source_->config()), isa_(active_isa()) {
  const auto& c = config_;
  const WeightSource& src = *source_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, QD = c.q_dim(), KD = c.kv_dim();
  QWENQAT_CHECK(c.dim_head() % 2 == 0, "config.json of ", src.origin(),
                ": head_dim must be even for the rotary embedding");
  embed_tokens_ = Linear::from_source(src.get("model.embed_tokens.weight"),
                                      "model.embed_tokens.weight", c.vocab_size, H);
  tied_ = c.tie_word_embeddings;
  if (!tied_) {
    lm_head_ = Linear::from_source(src.get("lm_head.weight"), "lm_head.weight", c.vocab_size, H);
  }
  norm_ = vector_f32(src, "model.norm.weight", H);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer L;
    L.input_layernorm = vector_f32(src, p + "input_layernorm.weight", H);
    L.post_attention_layernorm = vector_f32(src, p + "post_attention_layernorm.weight", H);
    auto lin = [&](const std::string& n, int64_t rows, int64_t cols) {
      return Linear::from_source(src.get(p + n + ".weight"), p + n + ".weight", rows, cols);
    };
    L.q_proj = lin("self_attn.q_proj", QD, H);
    L.k_proj = lin("self_attn.k_proj", KD, H);
    L.v_proj = lin("self_attn.v_proj", KD, H);
    L.o_proj = lin("self_attn.o_proj", H, QD);
    L.gate_proj = lin("mlp.gate_proj", I, H);
    L.up_proj = lin("mlp.up_proj", I, H);
    L.down_proj = lin("mlp.down_proj", H, I);
    L.q_proj.set_bias(vector_f32(src, p + "self_attn.q_proj.bias", QD));
    L.k_proj.set_bias(vector_f32(src, p + "self_attn.k_proj.bias", KD));
    L.v_proj.set_bias(vector_f32(src, p + "self_attn.v_proj.bias", KD));
    layers_.push_back(std::move(L));
  }
  // inv_freq in float32 as Hugging Face computes it:
  // 1 / base ** (arange(0, d, 2).float() / d).
  const int64_t d = c.dim_head();
  const float base = static_cast<float>(c.rope_theta);
  for (int64_t i = 0; i < d; i += 2) {
    const float e = static_cast<float>(i) / static_cast<float>(d);
    inv_freq_.push_back(1.0f / std::pow(base, e));
  }
}

uint64_t Model::weight_bytes_per_step() const {
  uint64_t b = tied_ ? embed_tokens_.weight_bytes() : lm_head_.weight_bytes();
  for (const auto& L : layers_) {
    for (const Linear* l :
         {&L.q_proj, &L.k_proj, &L.v_proj, &L.o_proj, &L.gate_proj, &L.up_proj, &L.down_proj})
      b += l->weight_bytes();
  }
  return b;
}

std::string Model::describe_schemes() const {
  std::map<std::string, int> counts;
  for (const auto& L : layers_) {
    for (const Linear* l :
         {&L.q_proj, &L.k_proj, &L.v_proj, &L.o_proj, &L.gate_proj, &L.up_proj, &L.down_proj})
      ++counts[l->scheme()];
  }
  ++counts[(tied_ ? embed_tokens_ : lm_head_).scheme()];
  if (counts.size() == 1) return counts.begin()->first;
  std::string s = "mixed:";
  for (const auto& [k, v] : counts) s += " " + k + " (" + std::to_string(v) + ")";
  return s;
}

void Model::attention(const std::vector<SequenceStep>& steps, const std::vector<int64_t>& first_row,
                      int64_t layer, const KvCache& cache, ThreadPool& pool, const float* q,
                      float* out, AlignedVector<float>& prompt_kv) const {
  const int64_t d = config_.dim_head(), heads = config_.num_attention_heads;
  const int64_t kv_heads = config_.num_key_value_heads, group = heads / kv_heads;
  const int64_t QD = config_.q_dim();
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const bool f16 = cache.dtype() == KvDtype::kF16;
  const auto ctx_of = [&](int64_t s) {  // positions sequence s attends to
    return cache.length(steps[s].slot) + static_cast<int64_t>(steps[s].tokens.size());
  };
  const std::vector<AttentionTask> tasks = attention_tasks(steps, kv_heads, group, pool.size());
  // A prompt's fp16 keys and values are converted once for all its blocks
  // (exactly, so the same values as a decode step reads in place): rows
  // [ctx, d] of K, then of V, for each kv head, from prompt_at[s].
  std::vector<int64_t> prompt_at(steps.size(), -1);
  int64_t converted = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    if (f16 && steps[s].tokens.size() > 1) {
      prompt_at[s] = converted;
      converted += kv_heads * 2 * ctx_of(static_cast<int64_t>(s)) * d;
    }
  }
  // Sequence s's converted keys of kv head g ([ctx, d]; its values follow).
  const auto prompt_k = [&](int64_t s, int64_t g) {
    return prompt_kv.data() + prompt_at[s] + g * 2 * ctx_of(s) * d;
  };
  if (converted > 0) {
    if (prompt_kv.size() < static_cast<size_t>(converted)) prompt_kv.resize(converted);
    constexpr int64_t kConvertRows = 256;  // positions per conversion task
    struct Chunk {
      int64_t s, g, p0;  // sequence, kv head, first position
    };
    std::vector<Chunk> chunks;
    for (int64_t s = 0; s < static_cast<int64_t>(steps.size()); ++s)
      for (int64_t g = 0; prompt_at[s] >= 0 && g < kv_heads; ++g)
        for (int64_t p0 = 0; p0 < ctx_of(s); p0 += kConvertRows) chunks.push_back({s, g, p0});
    pool.parallel_for(static_cast<int64_t>(chunks.size()), [&](int64_t c) {
      const auto [s, g, p0] = chunks[c];
      const int64_t ctx = ctx_of(s);
      const KvRows from = cache.head(steps[s].slot, layer, g, d);
      float* k = prompt_k(s, g);
      for (int64_t p = p0; p < std::min(ctx, p0 + kConvertRows); ++p) {
        fp16_to_f32_row(from.k16 + p * from.stride, k + p * d, d);
        fp16_to_f32_row(from.v16 + p * from.stride, k + (ctx + p) * d, d);
      }
    });
  }
  pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t task) {
    const auto [s, g, j0, h0, h1] = tasks[task];
    const SequenceStep& st = steps[s];
    const int64_t past = cache.length(st.slot);
    const int64_t n = static_cast<int64_t>(st.tokens.size());
    const float* pk = prompt_at[s] >= 0 ? prompt_k(s, g) : nullptr;
    const KvRows kv = pk ? KvRows{pk, pk + (past + n) * d, nullptr, nullptr, d}
                         : cache.head(st.slot, layer, g, d);
    // The block's heads ([rows, hn] of them, row j seeing positions up to
    // past + j) read each key and value row once, with the same bits as one
    // row at a time.
    thread_local AlignedVector<float> w, qb, ob;
    thread_local std::vector<int64_t> vis;
    const int64_t rows = std::min(kQueryBlock, n - j0), row0 = first_row[s] + j0, hn = h1 - h0;
    const int64_t at0 = row0 * QD + (g * group + h0) * d;  // row0's heads [hn, d]
    if (rows == 1) {
      w.resize(hn * (past + j0 + 1));
      attend(q + at0, hn, kv, past + j0 + 1, d, scale, w.data(), out + at0, isa_);
      return;
    }
    qb.resize(rows * hn * d);
    ob.resize(rows * hn * d);
    vis.resize(rows * hn);
    for (int64_t j = 0; j < rows; ++j) {
      std::copy_n(q + at0 + j * QD, hn * d, qb.data() + j * hn * d);
      std::fill_n(vis.data() + j * hn, hn, past + j0 + j + 1);
    }
    const int64_t ctx_b = past + j0 + rows;
    w.resize(rows * hn * ctx_b);
    attend_masked(qb.data(), rows * hn, vis.data(), kv, ctx_b, d, scale, w.data(), ob.data(), isa_);
    for (int64_t j = 0; j < rows; ++j)
      std::copy_n(ob.data() + j * hn * d, hn * d, out + at0 + j * QD);
  });
}

void Model::forward(const std::vector<SequenceStep>& steps, KvCache& cache, ThreadPool& pool,
                    std::vector<float>& logits, bool all_positions) {
  const auto& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, QD = c.q_dim(), KD = c.kv_dim();
  const int64_t d = c.dim_head(), half = d / 2;
  QWENQAT_CHECK(!steps.empty(), "forward: no sequences given");
  QWENQAT_CHECK(cache.kv_dim() == KD, "forward: the KV cache was made for another model");
  // Validate everything before touching the cache.
  std::set<int64_t> slots;
  std::vector<int64_t> first_row;
  int64_t T = 0;
  for (const auto& st : steps) {
    QWENQAT_CHECK(st.slot >= 0 && st.slot < cache.num_slots(), "sequence slot ", st.slot,
                  " is out of range: the KV cache has ", cache.num_slots(), " slots");
    QWENQAT_CHECK(slots.insert(st.slot).second, "sequence slot ", st.slot,
                  " appears twice in one forward step");
    QWENQAT_CHECK(!st.tokens.empty(), "sequence slot ", st.slot, ": no tokens to process");
    const int64_t n = static_cast<int64_t>(st.tokens.size());
    const int64_t past = cache.length(st.slot);
    QWENQAT_CHECK(past + n <= cache.max_context(), "the sequence in slot ", st.slot, " needs ",
                  past + n, " positions (", past, " cached + ", n,
                  " new tokens) but the context limit is ", cache.max_context(),
                  " tokens; shorten the prompt or lower --max-new-tokens");
    for (int32_t id : st.tokens) {
      QWENQAT_CHECK(id >= 0 && id < c.vocab_size, "token id ", id,
                    " is out of range for this model (vocab_size ", c.vocab_size, ")");
    }
    first_row.push_back(T);
    T += n;
  }
  // Activations: x residual [T, H]; h normed [T, H] (or a branch output not
  // yet added to x); q [T, QD]; k, v [T, KD]; a attention out [T, QD];
  // g, u [T, I]. row_slot, row_pos: each row's cache slot and position.
  AlignedVector<float> x(T * H), h(T * H), q(T * QD), k(T * KD), v(T * KD), a(T * QD);
  AlignedVector<float> g(T * I), u(T * I), cosv(T * half), sinv(T * half);
  AlignedVector<float> prompt_kv;  // Model::attention's converted fp16 prompt rows
  std::vector<int64_t> row_slot(T), row_pos(T);
  for (size_t s = 0; s < steps.size(); ++s) {
    const int64_t past = cache.length(steps[s].slot);
    for (size_t j = 0; j < steps[s].tokens.size(); ++j) {
      const int64_t row = first_row[s] + static_cast<int64_t>(j);
      row_slot[row] = steps[s].slot;
      row_pos[row] = past + static_cast<int64_t>(j);
      embed_tokens_.row(steps[s].tokens[j], x.data() + row * H, isa_);
      const float pos = static_cast<float>(row_pos[row]);
      for (int64_t i = 0; i < half; ++i) {
        const float f = pos * inv_freq_[i];
        cosv[row * half + i] = std::cos(f);
        sinv[row * half + i] = std::sin(f);
      }
    }
  }
  const float eps = static_cast<float>(c.rms_norm_eps);
  // h = norm(x) with weight w, after x += h when h holds a branch output.
  bool branch_in_h = false;
  const auto add_and_norm = [&](const std::vector<float>& w) {
    pool.parallel_ranges(T, kParallelRows, [&](int64_t t0, int64_t t1) {
      if (branch_in_h)
        for (int64_t i = t0 * H; i < t1 * H; ++i) x[i] += h[i];
      rms_norm(x.data() + t0 * H, t1 - t0, H, w, eps, h.data() + t0 * H);
    });
    branch_in_h = false;
  };
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const Layer& L = layers_[l];
    add_and_norm(L.input_layernorm);
    Linear::forward_shared({{&L.q_proj, q.data()}, {&L.k_proj, k.data()}, {&L.v_proj, v.data()}},
                           h.data(), T, pool, isa_, act_quant_);
    pool.parallel_ranges(T, kParallelRows, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        apply_rope(q.data() + t * QD, c.num_attention_heads, d, &cosv[t * half], &sinv[t * half]);
        apply_rope(k.data() + t * KD, c.num_key_value_heads, d, &cosv[t * half], &sinv[t * half]);
        cache.store(row_slot[t], l, row_pos[t], k.data() + t * KD, v.data() + t * KD);
      }
    });
    attention(steps, first_row, l, cache, pool, q.data(), a.data(), prompt_kv);
    L.o_proj.forward(a.data(), T, h.data(), pool, isa_, act_quant_);
    branch_in_h = true;
    add_and_norm(L.post_attention_layernorm);
    Linear::forward_shared({{&L.gate_proj, g.data()}, {&L.up_proj, u.data()}}, h.data(), T, pool,
                           isa_, act_quant_);
    swiglu_parallel(g.data(), u.data(), T * I, pool, isa_);
    L.down_proj.forward(g.data(), T, h.data(), pool, isa_, act_quant_);
    branch_in_h = true;
  }
  for (const auto& st : steps) {
    cache.set_length(st.slot, cache.length(st.slot) + static_cast<int64_t>(st.tokens.size()));
  }
  // Final norm and lm_head on the rows whose logits are wanted.
  std::vector<int64_t> rows;
  if (all_positions) {
    for (int64_t t = 0; t < T; ++t) rows.push_back(t);
  } else {
    for (size_t s = 0; s < steps.size(); ++s)
      rows.push_back(first_row[s] + static_cast<int64_t>(steps[s].tokens.size()) - 1);
  }
  const int64_t R = static_cast<int64_t>(rows.size());
  std::vector<float> sel(R * H);
  pool.parallel_ranges(R, kParallelRows, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      float* xr = x.data() + rows[i] * H;
      const float* hr = h.data() + rows[i] * H;  // the last down_proj's output
      for (int64_t j = 0; j < H; ++j) xr[j] += hr[j];
      rms_norm(xr, 1, H, norm_, eps, sel.data() + i * H);
    }
  });
  logits.resize(static_cast<size_t>(R * c.vocab_size));
  (tied_ ? embed_tokens_ : lm_head_).forward(sel.data(), R, logits.data(), pool, isa_, act_quant_);
}

}  // namespace qwenqat::engine
