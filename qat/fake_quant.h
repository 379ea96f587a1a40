// LibTorch fake quantization for QAT: the weight quantizer (per-channel or
// per-group, symmetric or asymmetric, learnable LSQ scales or frozen ones) and
// the per-token dynamic 8-bit activation quantizer ("8da4w" style). Both are
// models::QuantizerImpl modules that the model's layers call on their weight /
// input. The forward values reproduce quant::fake_quantize_one (qat/quant/
// quant_math.h) bit for bit: fake quantization always runs in float32 with
// fp16-rounded scales and offsets, whatever the model's compute dtype.
// Formulas and gradients: docs/QAT.md.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "models/quant_hook.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::qat {

// The fp16-rounded scales (or offsets) that the forward pass and convert()
// use, clamped exactly as quant::choose_qparams clamps its own: scales to
// [quant::kMinScale, quant::kMaxHalf] (so a learned scale that reaches 0 or goes
// negative never divides by zero), offsets to +-quant::kMaxHalf. s: any shape,
// float32. Not differentiable (no autograd).
torch::Tensor deployed_scale(const torch::Tensor& s);
torch::Tensor deployed_offset(const torch::Tensor& o);

// Differentiable fake quantization of a [rows, cols] weight with parameters
// scale / offset of shape [rows, groups] (float32; offset undefined for
// symmetric specs). Forward: exactly quant::fake_quantize_one per element with
// GroupParams{deployed_scale(scale), deployed_offset(offset)}, computed in
// float32 and returned in w's dtype. Backward (LSQ / LSQ+):
//   v = w / s (symmetric) or (w - o) / s (asymmetric), range [qmin, qmax]
//   dL/dw = dL/dy where qmin <= v <= qmax, 0 elsewhere (straight-through round)
//   dL/ds = g * sum_group dL/dy * (round(v) - v | qmin | qmax)
//   dL/do = g * sum_group dL/dy * (0 inside | 1 outside)
//   g = grad_scale_factor(spec, cols) = 1 / sqrt(N * Q_P), N = elements per
//   group, Q_P = largest positive code (2^(b-1) - 1 symmetric, 2^b - 1 asym).
// Gradients for scale/offset are produced only if they require grad.
torch::Tensor fake_quantize_weight(const torch::Tensor& w, const torch::Tensor& scale,
                                   const torch::Tensor& offset, const quant::QuantSpec& spec);

double grad_scale_factor(const quant::QuantSpec& spec, int64_t cols);

// Per-token dynamic symmetric fake quantization of activations x [..., K]:
// per row of the last dim s = max|x| / (2^(bits-1) - 1) in float32 (1 when the
// row is all zero), y = clamp(round(x / s), -2^(bits-1), 2^(bits-1) - 1) * s.
// Computed in float32, returned in x's dtype. Gradient: straight-through
// (identity; the dynamic scale is treated as a constant).
torch::Tensor fake_quantize_per_token(const torch::Tensor& x, int bits);

// Options of a weight quantizer.
struct WeightQuantOptions {
  quant::QuantSpec spec;
  bool learnable_scales = true;  // false: scales (and offsets) frozen after init
  quant::ScaleInit init = quant::ScaleInit::kMinMax;
};

// Weight fake quantizer of one layer. Parameters (registered, so they are
// named "<layer>.weight_fake_quant.scale" / ".offset" on the model):
//   scale  [rows, groups] float32, initialized from quant::choose_qparams
//   offset [rows, groups] float32, asymmetric specs only
// With learnable_scales false they are buffers instead (saved, not trained).
// forward(w): w [rows, cols] of any float dtype -> same shape and dtype.
// Disabled (set_enabled(false)) it returns w unchanged. Not thread-safe.
class FakeQuantizerImpl : public models::QuantizerImpl {
 public:
  // weight: the layer's [rows, cols] weight, read once for initialization
  // (skipped when `initialize` is false: scales 1, offsets 0, to be loaded).
  // Throws qwenqat::Error naming `layer` if the spec does not fit the shape.
  FakeQuantizerImpl(const torch::Tensor& weight, const WeightQuantOptions& options,
                    const std::string& layer, bool initialize = true);
  torch::Tensor forward(const torch::Tensor& w) override;

  const quant::QuantSpec& spec() const { return options_.spec; }
  const WeightQuantOptions& options() const { return options_; }
  torch::Tensor scale() const { return scale_; }    // [rows, groups] float32
  torch::Tensor offset() const { return offset_; }  // undefined if symmetric
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Re-initializes scale/offset from `weight` with the configured init.
  void initialize_from(const torch::Tensor& weight);

 private:
  WeightQuantOptions options_;
  std::string layer_;
  int64_t rows_ = 0, cols_ = 0;
  torch::Tensor scale_, offset_;
};
TORCH_MODULE(FakeQuantizer);

// Per-token dynamic activation fake quantizer (no parameters).
// forward(x): x [..., K] -> same shape and dtype. Not thread-safe.
class ActivationFakeQuantizerImpl : public models::QuantizerImpl {
 public:
  explicit ActivationFakeQuantizerImpl(int bits = 8);
  torch::Tensor forward(const torch::Tensor& x) override;
  int bits() const { return bits_; }

 private:
  int bits_;
};
TORCH_MODULE(ActivationFakeQuantizer);

}  // namespace qwenqat::qat
