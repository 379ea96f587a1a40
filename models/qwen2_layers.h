// The building blocks of the LibTorch Qwen2 model, written the LibTorch way
// (Options struct + XxxImpl + TORCH_MODULE) and registered under Hugging Face
// names: Linear and Embedding (both carry the QAT quantizer hooks of
// models/quant_hook.h), RMSNorm, rotary embedding, grouped-query attention,
// SwiGLU MLP and the decoder layer. Numerics follow transformers'
// Qwen2ForCausalLM (eager attention): see each class.
//
// Dtypes: parameters are created uninitialized in ModuleOptions::dtype (the
// compute dtype, float32 / bfloat16 / float16) on ModuleOptions::device; they
// are filled by load_weights() or init_weights() (models/checkpoint_io.h).
// Modules are not thread-safe (one forward at a time per module).
#pragma once

#include <torch/torch.h>

#include <memory>

#include "models/checkpoint/qwen2_config.h"
#include "models/kv_cache.h"
#include "models/quant_hook.h"

namespace qwenqat::models {

// Where and in which dtype parameters are created.
struct ModuleOptions {
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  torch::TensorOptions tensor_options() const {
    return torch::TensorOptions().dtype(dtype).device(device);
  }
};

// Common base of the layers that QAT can quantize (Linear, Embedding).
// Parameter "weight" [out, in] (Embedding: [vocab, hidden]); quantizers are
// registered as submodules "weight_fake_quant" / "input_fake_quant"
// (replacing any previous one; nullptr removes it).
class QuantizableImpl : public torch::nn::Module {
 public:
  enum class Kind { kLinear, kEmbedding };
  explicit QuantizableImpl(Kind kind) : kind_(kind) {}
  Kind kind() const { return kind_; }

  torch::Tensor& weight() { return weight_; }
  void set_weight_quantizer(std::shared_ptr<QuantizerImpl> q);
  // Embedding layers take integer ids: setting an input quantizer throws.
  void set_input_quantizer(std::shared_ptr<QuantizerImpl> q);
  const std::shared_ptr<QuantizerImpl>& weight_quantizer() const { return weight_q_; }
  const std::shared_ptr<QuantizerImpl>& input_quantizer() const { return input_q_; }

  // The weight as used in forward: weight_q->forward(weight) when a weight
  // quantizer is set and enabled, the plain weight otherwise.
  torch::Tensor effective_weight();
  // x as used in forward: input_q->forward(x) when set and enabled, else x.
  torch::Tensor quantize_input(const torch::Tensor& x);

 protected:
  torch::Tensor weight_;

 private:
  void set_quantizer(const std::string& name, std::shared_ptr<QuantizerImpl> q,
                     std::shared_ptr<QuantizerImpl>* slot);
  Kind kind_;
  std::shared_ptr<QuantizerImpl> weight_q_, input_q_;
};
using QuantizableLayer = std::shared_ptr<QuantizableImpl>;

struct LinearOptions {
  int64_t in_features = 0, out_features = 0;
  bool bias = false;
  ModuleOptions module;
};

// y = linear(quantize_input(x), effective_weight(), bias).
// x: [..., in] in the compute dtype -> [..., out]. Parameters "weight"
// [out, in] and (if options.bias) "bias" [out].
class LinearImpl : public QuantizableImpl {
 public:
  explicit LinearImpl(const LinearOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor& bias() { return bias_; }  // undefined if no bias

 private:
  torch::Tensor bias_;
};
TORCH_MODULE(Linear);

struct EmbeddingOptions {
  int64_t num_embeddings = 0, embedding_dim = 0;
  ModuleOptions module;
};

// ids [B, T] int64 -> [B, T, dim] rows of effective_weight(). Parameter
// "weight" [num_embeddings, dim]. Ids out of range throw (TORCH_CHECK).
class EmbeddingImpl : public QuantizableImpl {
 public:
  explicit EmbeddingImpl(const EmbeddingOptions& options);
  torch::Tensor forward(const torch::Tensor& ids);

 private:
  int64_t num_embeddings_;
};
TORCH_MODULE(Embedding);

// HF Qwen2RMSNorm: computed in float32, cast back to the input dtype, then
// scaled by "weight" [dim]: weight * (x32 * rsqrt(mean(x32^2) + eps)).to(dtype).
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const ModuleOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [..., dim] -> [..., dim]
  torch::Tensor& weight() { return weight_; }

 private:
  torch::Tensor weight_;
  double eps_;
};
TORCH_MODULE(RMSNorm);

// Rotary position embedding (rotate-half). inv_freq = 1 / theta^(arange(0, d,
// 2) / d) in float32; cos/sin computed in float32 from the positions and
// cast to the compute dtype. No parameters (nothing is saved).
struct RotaryTables {
  torch::Tensor cos, sin;  // [B, T, head_dim] in the compute dtype
};
RotaryTables rotary_tables(const torch::Tensor& positions, int64_t head_dim, double theta,
                           torch::Dtype dtype);
// x: [B, heads, T, head_dim]; returns x * cos + rotate_half(x) * sin.
torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& rope);

// HF Qwen2Attention: q/k/v projections with biases, o_proj without, GQA
// (each group of num_attention_heads / num_key_value_heads query heads shares
// one kv head), eager attention with softmax in float32.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const Qwen2Config& config, const ModuleOptions& options);
  // h: [B, T, hidden]; rope for the T new positions; allowed: [B, 1, T, S]
  // bool (true = may attend), S = keys in the cache after this step (or T).
  // cache/layer: when cache != nullptr the new k/v are written at slots
  // [cache->length, cache->length + T) of layer `layer` and attention runs
  // over slots [0, S). Returns [B, T, hidden].
  torch::Tensor forward(const torch::Tensor& h, const RotaryTables& rope,
                        const torch::Tensor& allowed, KVCache* cache, int64_t layer);

  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

// HF Qwen2MLP: down_proj(silu(gate_proj(x)) * up_proj(x)), no biases.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(const Qwen2Config& config, const ModuleOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // [..., hidden] -> [..., hidden]

  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(MLP);

// HF Qwen2DecoderLayer (pre-norm): h += attn(input_layernorm(h));
// h += mlp(post_attention_layernorm(h)).
class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const Qwen2Config& config, const ModuleOptions& options);
  torch::Tensor forward(const torch::Tensor& h, const RotaryTables& rope,
                        const torch::Tensor& allowed, KVCache* cache, int64_t layer);

  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

}  // namespace qwenqat::models
