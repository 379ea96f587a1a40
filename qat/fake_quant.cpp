// Fake quantization autograd functions (LSQ weight quantizer, per-token
// activation quantizer) and the quantizer modules built on them. The forward
// arithmetic mirrors qat/quant/quant_math.cpp operation by operation (one
// division, round half to even, clamp, one multiply [+ one add]) so results are
// bit-identical; see docs/QAT.md.
#include "qat/fake_quant.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "data/util/check.h"

namespace qwenqat::qat {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Integer range of the codes relative to the zero point: symmetric codes are
// signed q in [-2^(b-1), 2^(b-1) - 1]; asymmetric ones unsigned in [0, 2^b - 1].
struct CodeRange {
  double qmin, qmax;
};
CodeRange code_range(const quant::QuantSpec& spec) {
  if (spec.symmetric) return {-double(1 << (spec.bits - 1)), double((1 << (spec.bits - 1)) - 1)};
  return {0.0, double(spec.umax())};
}

// w [rows, cols] (any float dtype) -> float32 [rows, groups, group_len].
torch::Tensor grouped_f32(const torch::Tensor& w, int64_t groups) {
  return w.to(torch::kFloat).contiguous().view({w.size(0), groups, -1});
}

// Forward values, float32, [rows, groups, group_len]; s/o are deployed
// [rows, groups, 1] tensors (o undefined for symmetric).
torch::Tensor fq_forward(const torch::Tensor& wg, const torch::Tensor& s, const torch::Tensor& o,
                         const CodeRange& r) {
  torch::Tensor q = o.defined() ? (wg - o).div_(s) : wg / s;  // one division, as quant_math
  q.round_().clamp_(r.qmin, r.qmax);
  if (o.defined()) {
    q.mul_(s).add_(o);
  } else {
    // + 0.0 turns round()'s -0.0 into +0.0: quant_math goes through an integer
    // code, so a weight rounding to code 0 dequantizes to +0.0 there.
    q.add_(0.0).mul_(s);
  }
  return q;
}

class WeightFakeQuantFn : public torch::autograd::Function<WeightFakeQuantFn> {
 public:
  // offset: pass a [rows, groups] tensor for asymmetric specs and an empty
  // (numel 0) tensor for symmetric ones.
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor w, torch::Tensor scale,
                               torch::Tensor offset, int64_t bits, int64_t group_size,
                               bool symmetric) {
    const quant::QuantSpec spec{int(bits), int(group_size), symmetric};
    const int64_t groups = spec.groups_per_row(w.size(1));
    const auto s = deployed_scale(scale).unsqueeze(-1);
    const auto o = symmetric ? torch::Tensor() : deployed_offset(offset).unsqueeze(-1);
    ctx->save_for_backward({w, scale, offset});
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["group_size"] = group_size;
    ctx->saved_data["symmetric"] = symmetric;
    return fq_forward(grouped_f32(w, groups), s, o, code_range(spec)).view(w.sizes()).to(
        w.scalar_type());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& w = saved[0];
    const auto& scale = saved[1];
    const auto& offset = saved[2];
    const quant::QuantSpec spec{int(ctx->saved_data["bits"].toInt()),
                                int(ctx->saved_data["group_size"].toInt()),
                                ctx->saved_data["symmetric"].toBool()};
    const int64_t groups = spec.groups_per_row(w.size(1));
    const CodeRange r = code_range(spec);
    const auto s = deployed_scale(scale).unsqueeze(-1);
    const auto wg = grouped_f32(w, groups);
    const auto v = spec.symmetric ? wg / s : (wg - deployed_offset(offset).unsqueeze(-1)).div_(s);
    const auto below = v < r.qmin;
    const auto above = v > r.qmax;
    const auto outside = below.logical_or(above);
    const auto gy = grads[0].to(torch::kFloat).contiguous().view(wg.sizes());

    torch::Tensor grad_w, grad_s, grad_o;
    if (ctx->needs_input_grad(0)) {
      grad_w = gy.masked_fill(outside, 0.0).view(w.sizes()).to(w.scalar_type());
    }
    const double g = grad_scale_factor(spec, w.size(1));
    if (ctx->needs_input_grad(1)) {
      // round(v) - v inside, qmin below, qmax above.
      auto term = torch::round(v).sub_(v);
      term.masked_fill_(below, r.qmin).masked_fill_(above, r.qmax);
      grad_s = (gy * term).sum(-1).mul_(g);
    }
    if (!spec.symmetric && ctx->needs_input_grad(2)) {
      grad_o = gy.masked_fill(outside.logical_not(), 0.0).sum(-1).mul_(g);
    }
    return {grad_w, grad_s, grad_o, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

class PerTokenFakeQuantFn : public torch::autograd::Function<PerTokenFakeQuantFn> {
 public:
  static torch::Tensor forward(AutogradContext* /*ctx*/, torch::Tensor x, int64_t bits) {
    const double qmax = double((1 << (bits - 1)) - 1);
    const auto x32 = x.to(torch::kFloat);
    auto s = x32.abs().amax(-1, /*keepdim=*/true).div_(qmax);
    s.masked_fill_(s == 0, 1.0);
    auto y = x32 / s;
    y.round_().clamp_(-qmax - 1.0, qmax).add_(0.0).mul_(s);  // +0.0: no -0.0 codes
    return y.to(x.scalar_type());
  }
  static tensor_list backward(AutogradContext* /*ctx*/, tensor_list grads) {
    return {grads[0], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor deployed_scale(const torch::Tensor& s) {
  torch::NoGradGuard no_grad;
  return s.detach().to(torch::kFloat).clamp(quant::kMinScale, quant::kMaxHalf).to(torch::kHalf).to(torch::kFloat);
}

torch::Tensor deployed_offset(const torch::Tensor& o) {
  torch::NoGradGuard no_grad;
  return o.detach().to(torch::kFloat).clamp(-quant::kMaxHalf, quant::kMaxHalf).to(torch::kHalf).to(torch::kFloat);
}

double grad_scale_factor(const quant::QuantSpec& spec, int64_t cols) {
  const double n = double(spec.group_len(cols));
  const double qp = spec.symmetric ? double((1 << (spec.bits - 1)) - 1) : double(spec.umax());
  return 1.0 / std::sqrt(n * qp);
}

torch::Tensor fake_quantize_weight(const torch::Tensor& w, const torch::Tensor& scale,
                                   const torch::Tensor& offset, const quant::QuantSpec& spec) {
  TORCH_CHECK(w.dim() == 2, "fake_quantize_weight: weight must be 2-D [rows, cols], got ",
              w.sizes());
  TORCH_CHECK(spec.bits >= 2 && spec.bits <= 8, "fake_quantize_weight: bits must be 2..8, got ",
              spec.bits);
  const int64_t gl = spec.group_len(w.size(1));
  TORCH_CHECK(gl > 0 && w.size(1) % gl == 0, "fake_quantize_weight: group size ", gl,
              " does not divide the input dimension ", w.size(1));
  const int64_t groups = w.size(1) / gl;
  TORCH_CHECK(scale.dim() == 2 && scale.size(0) == w.size(0) && scale.size(1) == groups,
              "fake_quantize_weight: scale must be [", w.size(0), ", ", groups, "], got ",
              scale.sizes());
  torch::Tensor o = offset;
  if (spec.symmetric) {
    o = torch::empty({0}, scale.options());
  } else {
    TORCH_CHECK(offset.defined() && offset.sizes() == scale.sizes(),
                "fake_quantize_weight: asymmetric spec needs an offset shaped like the scale");
  }
  return WeightFakeQuantFn::apply(w, scale, o, int64_t(spec.bits), int64_t(spec.group_size),
                                  spec.symmetric);
}

torch::Tensor fake_quantize_per_token(const torch::Tensor& x, int bits) {
  TORCH_CHECK(bits >= 2 && bits <= 8, "fake_quantize_per_token: bits must be 2..8, got ", bits);
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) > 0, "fake_quantize_per_token: empty last dim");
  return PerTokenFakeQuantFn::apply(x, int64_t(bits));
}

FakeQuantizerImpl::FakeQuantizerImpl(const torch::Tensor& weight, const WeightQuantOptions& options,
                                     const std::string& layer, bool initialize)
    : options_(options), layer_(layer) {
  QWENQAT_CHECK(weight.defined() && weight.dim() == 2, "layer ", layer,
                ": weight quantization needs a 2-D [out, in] weight");
  rows_ = weight.size(0);
  cols_ = weight.size(1);
  options_.spec.validate(cols_, layer + ".weight");
  const int64_t groups = options_.spec.groups_per_row(cols_);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(weight.device());
  scale_ = torch::ones({rows_, groups}, opts);
  if (options_.learnable_scales) {
    scale_ = register_parameter("scale", scale_, /*requires_grad=*/true);
  } else {
    scale_ = register_buffer("scale", scale_);
  }
  if (!options_.spec.symmetric) {
    offset_ = torch::zeros({rows_, groups}, opts);
    if (options_.learnable_scales) {
      offset_ = register_parameter("offset", offset_, /*requires_grad=*/true);
    } else {
      offset_ = register_buffer("offset", offset_);
    }
  }
  if (initialize) initialize_from(weight);
}

void FakeQuantizerImpl::initialize_from(const torch::Tensor& weight) {
  QWENQAT_CHECK(weight.dim() == 2 && weight.size(0) == rows_ && weight.size(1) == cols_, "layer ",
                layer_, ": weight shape changed since the quantizer was created");
  torch::NoGradGuard no_grad;
  const auto w = weight.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t gl = options_.spec.group_len(cols_);
  const int64_t groups = cols_ / gl;
  std::vector<float> s(size_t(rows_ * groups)), o(size_t(rows_ * groups));
  const float* wp = w.data_ptr<float>();
  const auto spec = options_.spec;
  const auto init = options_.init;
  at::parallel_for(0, rows_, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t g = 0; g < groups; ++g) {
        const auto p = quant::choose_qparams(wp + r * cols_ + g * gl, gl, spec, init);
        s[size_t(r * groups + g)] = p.scale;
        o[size_t(r * groups + g)] = p.offset;
      }
    }
  });
  scale_.copy_(torch::from_blob(s.data(), {rows_, groups}, torch::kFloat));
  if (offset_.defined()) offset_.copy_(torch::from_blob(o.data(), {rows_, groups}, torch::kFloat));
}

torch::Tensor FakeQuantizerImpl::forward(const torch::Tensor& w) {
  if (!enabled()) return w;
  return fake_quantize_weight(w, scale_, offset_, options_.spec);
}

ActivationFakeQuantizerImpl::ActivationFakeQuantizerImpl(int bits) : bits_(bits) {
  QWENQAT_CHECK(bits >= 2 && bits <= 8, "activation bits must be 2..8 (got ", bits, ")");
}

torch::Tensor ActivationFakeQuantizerImpl::forward(const torch::Tensor& x) {
  if (!enabled()) return x;
  return fake_quantize_per_token(x, bits_);
}

}  // namespace qwenqat::qat
