// Tests of the LibTorch fake quantizers: forward values bit-identical to the
// torch-free quant::fake_quantize_one for every scheme, initial scales equal to
// quant::choose_qparams, LSQ gradients against finite differences of the LSQ
// surrogate, the straight-through weight mask, per-token activations, bad input.
#include "qat/fake_quant.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::qat {
namespace {

// [rows, cols] weights with a few outliers per row, seeded.
torch::Tensor random_weight(int64_t rows, int64_t cols, uint64_t seed) {
  torch::manual_seed(seed);
  auto w = torch::randn({rows, cols}) * 0.05;
  auto idx = torch::randint(cols, {rows, 2});
  for (int64_t r = 0; r < rows; ++r) {
    w[r][idx[r][0].item<int64_t>()] = 0.4;
    w[r][idx[r][1].item<int64_t>()] = -0.3;
  }
  return w;
}

// The torch-free reference: fake_quantize_one with per-group params.
torch::Tensor reference_fq(const torch::Tensor& w, const torch::Tensor& scale,
                           const torch::Tensor& offset, const quant::QuantSpec& spec) {
  const auto wc = w.to(torch::kFloat).contiguous();
  const int64_t rows = wc.size(0), cols = wc.size(1), gl = spec.group_len(cols);
  auto out = torch::empty_like(wc);
  const float* wp = wc.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const auto s = scale.contiguous();
  const auto o = offset.defined() ? offset.contiguous() : torch::zeros_like(s);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = c / gl;
      quant::GroupParams p{round_to_fp16(s[r][g].item<float>()),
                           spec.symmetric ? 0.0f : round_to_fp16(o[r][g].item<float>())};
      op[r * cols + c] = quant::fake_quantize_one(wp[r * cols + c], p, spec);
    }
  }
  return out;
}

bool bit_equal(const torch::Tensor& a, const torch::Tensor& b) {
  const auto x = a.contiguous(), y = b.contiguous();
  return x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type() &&
         std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;
}

std::vector<quant::QuantSpec> all_specs() {
  std::vector<quant::QuantSpec> specs;
  for (int bits = 2; bits <= 8; ++bits) {
    for (int group : {0, 32, 64, 128}) {
      for (bool sym : {true, false}) specs.push_back({bits, group, sym});
    }
  }
  return specs;
}

TEST(FakeQuant, InitialScalesAndForwardMatchQuantMathForEveryScheme) {
  const auto w = random_weight(6, 256, 1);
  for (const auto& spec : all_specs()) {
    for (auto init : {quant::ScaleInit::kMinMax, quant::ScaleInit::kMseClip}) {
      SCOPED_TRACE(spec.name() + (init == quant::ScaleInit::kMseClip ? " mse" : " minmax"));
      FakeQuantizer fq(w, WeightQuantOptions{spec, true, init}, "layer");
      const int64_t gl = spec.group_len(256);
      for (int64_t r = 0; r < 6; ++r) {
        for (int64_t g = 0; g < 256 / gl; ++g) {
          const auto row = w[r].contiguous();
          const auto p = quant::choose_qparams(row.data_ptr<float>() + g * gl, gl, spec, init);
          ASSERT_EQ(fq->scale()[r][g].item<float>(), p.scale);
          if (!spec.symmetric) {
            ASSERT_EQ(fq->offset()[r][g].item<float>(), p.offset);
          }
        }
      }
      const auto y = fq->forward(w);
      EXPECT_TRUE(bit_equal(y, reference_fq(w, fq->scale(), fq->offset(), spec)));
    }
  }
}

TEST(FakeQuant, LearnedScalesAreFp16RoundedInForward) {
  const auto w = random_weight(4, 128, 2);
  for (const auto& spec : all_specs()) {
    SCOPED_TRACE(spec.name());
    FakeQuantizer fq(w, WeightQuantOptions{spec}, "layer");
    {
      torch::NoGradGuard ng;
      fq->scale().mul_(torch::rand_like(fq->scale()) * 0.4 + 0.8);  // not fp16 values
      if (!spec.symmetric) fq->offset().add_(torch::randn_like(fq->offset()) * 1e-3);
    }
    EXPECT_TRUE(bit_equal(fq->forward(w), reference_fq(w, fq->scale(), fq->offset(), spec)));
  }
}

TEST(FakeQuant, Bfloat16WeightsQuantizeInFloat32) {
  const auto w = random_weight(4, 64, 3).to(torch::kBFloat16);
  const quant::QuantSpec spec{4, 32, true};
  FakeQuantizer fq(w, WeightQuantOptions{spec}, "layer");
  const auto y = fq->forward(w);
  ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
  const auto ref = reference_fq(w, fq->scale(), fq->offset(), spec).to(torch::kBFloat16);
  EXPECT_TRUE(bit_equal(y, ref));
}

TEST(FakeQuant, DisabledPassesThrough) {
  const auto w = random_weight(2, 64, 4);
  FakeQuantizer fq(w, WeightQuantOptions{{4, 32, true}}, "layer");
  fq->set_enabled(false);
  EXPECT_TRUE(bit_equal(fq->forward(w), w));
}

TEST(FakeQuant, ZeroOrNegativeLearnedScaleNeverDividesByZero) {
  const auto w = random_weight(2, 64, 5);
  FakeQuantizer fq(w, WeightQuantOptions{{4, 32, true}}, "layer");
  {
    torch::NoGradGuard ng;
    fq->scale().fill_(0.0f);
    fq->scale()[1].fill_(-1.0f);
  }
  const auto y = fq->forward(w);
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_EQ(deployed_scale(torch::tensor({0.0f})).item<float>(), quant::kMinScale);
}

// LSQ surrogate in double: inside the range y = w + s * r (r = round(v0) - v0
// frozen at the evaluation point), outside y = s * q_clamped + o. Returns
// sum(c * y) for scale/offset of one group perturbed.
double surrogate(const std::vector<double>& w, const std::vector<double>& c, double s, double o,
                 const std::vector<double>& r, const std::vector<int>& region, double qmin,
                 double qmax) {
  double f = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    double y;
    if (region[i] == 0) {
      y = (w[i] - o) / s;
      y = (y + r[i]) * s + o;
    } else {
      y = (region[i] < 0 ? qmin : qmax) * s + o;
    }
    f += c[i] * y;
  }
  return f;
}

TEST(FakeQuant, LsqGradientsMatchFiniteDifferencesOfSurrogate) {
  for (bool sym : {true, false}) {
    for (int bits : {2, 4, 8}) {
      const quant::QuantSpec spec{bits, 32, sym};
      SCOPED_TRACE(spec.name());
      auto w = random_weight(3, 64, 6 + bits);
      FakeQuantizer fq(w, WeightQuantOptions{spec}, "layer");
      {
        torch::NoGradGuard ng;  // shrink scales so some weights fall outside the range
        fq->scale().copy_(deployed_scale(fq->scale() * 0.7));
        if (!sym) fq->offset().copy_(deployed_offset(fq->offset() * 0.9));
      }
      w.set_requires_grad(true);
      torch::manual_seed(99);
      const auto c = torch::randn({3, 64});
      (fq->forward(w) * c).sum().backward();
      const double qmin = sym ? -(1 << (bits - 1)) : 0,
                   qmax = sym ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
      const double g = grad_scale_factor(spec, 64);
      EXPECT_DOUBLE_EQ(g, 1.0 / std::sqrt(32.0 * qmax));
      int outside_count = 0;
      for (int64_t row = 0; row < 3; ++row) {
        for (int64_t grp = 0; grp < 2; ++grp) {
          const double s = fq->scale()[row][grp].item<float>();
          const double o = sym ? 0.0 : fq->offset()[row][grp].item<float>();
          std::vector<double> wv, cv, rv;
          std::vector<int> region;
          for (int64_t k = 0; k < 32; ++k) {
            const double wi = w[row][grp * 32 + k].item<float>();
            const double v = (wi - o) / s;
            wv.push_back(wi);
            cv.push_back(c[row][grp * 32 + k].item<float>());
            rv.push_back(std::nearbyint(v) - v);
            region.push_back(v < qmin ? -1 : (v > qmax ? 1 : 0));
            outside_count += region.back() != 0;
            // Straight-through weight gradient: c inside the range, 0 outside.
            const float gw = w.grad()[row][grp * 32 + k].item<float>();
            EXPECT_EQ(gw, region.back() == 0 ? cv.back() : 0.0) << "w[" << row << "," << k << "]";
          }
          const double h = 1e-6 * s;
          const double fd_s = (surrogate(wv, cv, s + h, o, rv, region, qmin, qmax) -
                               surrogate(wv, cv, s - h, o, rv, region, qmin, qmax)) /
                              (2 * h);
          EXPECT_NEAR(fq->scale().grad()[row][grp].item<float>(), g * fd_s,
                      1e-4 * (std::abs(g * fd_s) + 1e-3));
          if (!sym) {
            const double ho = 1e-6 * (std::abs(o) + s);
            const double fd_o = (surrogate(wv, cv, s, o + ho, rv, region, qmin, qmax) -
                                 surrogate(wv, cv, s, o - ho, rv, region, qmin, qmax)) /
                                (2 * ho);
            EXPECT_NEAR(fq->offset().grad()[row][grp].item<float>(), g * fd_o,
                        1e-4 * (std::abs(g * fd_o) + 1e-3));
          }
        }
      }
      EXPECT_GT(outside_count, 0);  // both branches exercised
    }
  }
}

TEST(FakeQuant, FrozenScalesAreBuffersWithoutGradient) {
  const auto w = random_weight(2, 64, 7);
  FakeQuantizer fq(w, WeightQuantOptions{{4, 32, false}, false}, "layer");
  EXPECT_TRUE(fq->parameters().empty());
  EXPECT_EQ(fq->buffers().size(), 2u);
  auto wg = w.clone().set_requires_grad(true);
  fq->forward(wg).sum().backward();
  EXPECT_TRUE(wg.grad().defined());
  EXPECT_FALSE(fq->scale().grad().defined());
}

TEST(FakeQuant, PerTokenActivationMatchesScalarReference) {
  torch::manual_seed(8);
  auto x = torch::randn({2, 3, 40}) * 3;
  x[1][2].zero_();
  for (int bits : {8, 4, 2}) {
    ActivationFakeQuantizer aq(bits);
    auto xg = x.clone().set_requires_grad(true);
    const auto y = aq->forward(xg);
    // The torch-free definition (quant_math.h), through integer codes as the
    // engine computes it.
    auto ref = torch::empty_like(x);
    const auto xr = x.view({-1, 40}).contiguous();
    auto rr = ref.view({-1, 40});
    const float qmax = quant::activation_qmax(bits);
    for (int64_t t = 0; t < 6; ++t) {
      const float* row = xr.data_ptr<float>() + t * 40;
      const float s = quant::choose_token_scale(row, 40, bits);
      for (int64_t k = 0; k < 40; ++k)
        rr[t][k] = float(quant::quantize_activation(row[k], s, qmax)) * s;
    }
    EXPECT_TRUE(bit_equal(y.detach(), ref)) << bits << " bits";
    EXPECT_TRUE(torch::all(y[1][2] == 0).item<bool>());
    y.sum().backward();
    EXPECT_TRUE(torch::all(xg.grad() == 1).item<bool>());  // straight-through
    // The per-token error is bounded by half a step.
    EXPECT_LE((y - x).abs().max().item<float>(), x.abs().max().item<float>() / qmax / 2 * 1.0001);
  }
  EXPECT_THROW(quant::activation_qmax(1), Error);
  EXPECT_THROW(quant::activation_qmax(9), Error);
}

TEST(FakeQuant, BadInputThrows) {
  const auto w = random_weight(2, 96, 9);
  EXPECT_THROW(FakeQuantizer(w, WeightQuantOptions{{4, 64, true}}, "l"), Error);  // 64 ∤ 96
  EXPECT_THROW(FakeQuantizer(w, WeightQuantOptions{{1, 32, true}}, "l"), Error);
  EXPECT_THROW(FakeQuantizer(w, WeightQuantOptions{{9, 32, true}}, "l"), Error);
  EXPECT_THROW(FakeQuantizer(torch::zeros({4}), WeightQuantOptions{}, "l"), Error);
  EXPECT_THROW(ActivationFakeQuantizer(1), Error);
  FakeQuantizer fq(w, WeightQuantOptions{{4, 32, true}}, "l");
  EXPECT_THROW(fq->forward(torch::zeros({2, 64})), c10::Error);
}

}  // namespace
}  // namespace qwenqat::qat
