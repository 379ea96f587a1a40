// Tests for qat/quant/quant_math.h: spec names, the exact rounding/clamping
// formulas, fp16 parameters, the zero-scale rule, MSE clipping and bad input.
#include "qat/quant/quant_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::quant {
namespace {

std::vector<float> random_weights(int64_t n, uint32_t seed, float stddev = 0.05f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> w(static_cast<size_t>(n));
  for (auto& x : w) x = dist(rng);
  return w;
}

bool is_fp16(float f) { return round_to_fp16(f) == f; }

TEST(QuantSpec, NamesRoundTrip) {
  for (const char* name : {"w4g32", "w8c", "w4g128a", "w2g64", "w8g32", "w3ca", "w5g16a"}) {
    EXPECT_EQ(parse_spec(name).name(), name);
  }
  const QuantSpec s = parse_spec("w4g128a");
  EXPECT_EQ(s.bits, 4);
  EXPECT_EQ(s.group_size, 128);
  EXPECT_FALSE(s.symmetric);
  EXPECT_EQ(parse_spec("w8c").group_size, 0);
  EXPECT_TRUE(parse_spec("w8c").symmetric);
}

TEST(QuantSpec, ParseRejectsBadNames) {
  for (const char* bad : {"", "w", "w4", "w1g32", "w9g32", "w16c", "w4g", "w4g0", "w4g032", "q4g32",
                          "w4g32b", "w4g32aa", "W4G32", "w4x", "w04g32", "w4g99999999999"}) {
    EXPECT_THROW(parse_spec(bad), Error) << bad;
  }
  try {
    parse_spec("int4");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'int4'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("w4g32"), std::string::npos);
  }
}

TEST(QuantSpec, ValidateChecksBitsAndGroups) {
  QuantSpec s;
  EXPECT_NO_THROW(s.validate(64, "t"));
  EXPECT_THROW(s.validate(40, "t"), Error);  // 32 does not divide 40
  EXPECT_THROW(s.validate(0, "t"), Error);
  s.group_size = 0;
  EXPECT_NO_THROW(s.validate(97, "t"));
  s.bits = 1;
  EXPECT_THROW(s.validate(64, "t"), Error);
  s.bits = 9;
  EXPECT_THROW(s.validate(64, "t"), Error);
  s.bits = 4;
  s.group_size = -32;
  EXPECT_THROW(s.validate(64, "t"), Error);
}

TEST(QuantMath, SymmetricMinMaxFormula) {
  const QuantSpec s{4, 32, true};
  std::vector<float> w = {-1.0f, 0.5f, 0.25f, 0.9f};
  const GroupParams p = choose_qparams(w.data(), 4, s);
  EXPECT_EQ(p.scale, round_to_fp16(1.0f / 7.0f));
  EXPECT_EQ(p.offset, 0.0f);
  for (float x : w) {
    const int q = int(std::nearbyint(x / p.scale));
    EXPECT_EQ(quantize_one(x, p, s), uint8_t(std::clamp(q, -8, 7) + 8)) << x;
  }
  EXPECT_EQ(quantize_one(-1.0f, p, s), 8 - 7);
  EXPECT_EQ(dequantize_one(1, p, s), -7.0f * p.scale);
  EXPECT_EQ(dequantize_one(15, p, s), 7.0f * p.scale);
}

TEST(QuantMath, RoundsTiesToEvenAndClamps) {
  const QuantSpec s{4, 32, true};
  const GroupParams p{1.0f, 0.0f};
  EXPECT_EQ(quantize_one(2.5f, p, s), 8 + 2);
  EXPECT_EQ(quantize_one(3.5f, p, s), 8 + 4);
  EXPECT_EQ(quantize_one(-2.5f, p, s), 8 - 2);
  EXPECT_EQ(quantize_one(0.5f, p, s), 8);
  EXPECT_EQ(quantize_one(100.0f, p, s), 15);
  EXPECT_EQ(quantize_one(-100.0f, p, s), 0);
  EXPECT_EQ(quantize_one(-8.4f, p, s), 0);
  EXPECT_EQ(quantize_one(std::numeric_limits<float>::infinity(), p, s), 15);
  EXPECT_EQ(quantize_one(std::numeric_limits<float>::quiet_NaN(), p, s), 8);
  const QuantSpec a{4, 32, false};
  const GroupParams pa{0.5f, -1.0f};
  EXPECT_EQ(quantize_one(-1.0f + 1.25f, pa, a), 2);  // 2.5 -> 2
  EXPECT_EQ(quantize_one(-1.0f + 1.75f, pa, a), 4);  // 3.5 -> 4
  EXPECT_EQ(quantize_one(-5.0f, pa, a), 0);
  EXPECT_EQ(quantize_one(50.0f, pa, a), 15);
  EXPECT_EQ(dequantize_one(3, pa, a), 3.0f * 0.5f + -1.0f);
}

TEST(QuantMath, AsymmetricOffsetIsRoundedMinAndScaleUsesIt) {
  const QuantSpec s{4, 32, false};
  std::vector<float> w = {0.1234567f, 0.3f, 0.9876f, 0.5f};
  const GroupParams p = choose_qparams(w.data(), 4, s);
  EXPECT_EQ(p.offset, round_to_fp16(0.1234567f));
  EXPECT_EQ(p.scale, round_to_fp16((0.9876f - p.offset) / 15.0f));
  EXPECT_EQ(quantize_one(0.9876f, p, s), 15);
}

TEST(QuantMath, ZeroAndTinyGroupsGetMinScale) {
  for (bool sym : {true, false}) {
    const QuantSpec s{4, 32, sym};
    std::vector<float> zeros(32, 0.0f);
    GroupParams p = choose_qparams(zeros.data(), 32, s);
    EXPECT_EQ(p.scale, kMinScale);
    EXPECT_EQ(f32_to_fp16(kMinScale), 0x0400);  // smallest normal fp16
    for (float x : zeros) EXPECT_EQ(fake_quantize_one(x, p, s), 0.0f);
    std::vector<float> tiny(32, 1e-7f);
    tiny[3] = -3e-7f;
    p = choose_qparams(tiny.data(), 32, s);
    EXPECT_EQ(p.scale, kMinScale);
    for (float x : tiny) EXPECT_LE(std::fabs(fake_quantize_one(x, p, s) - x), 1e-6f);
    p = choose_qparams(tiny.data(), 32, s, ScaleInit::kMseClip);
    EXPECT_EQ(p.scale, kMinScale);
  }
}

TEST(QuantMath, HugeWeightsClampScaleToFiniteFp16) {
  const QuantSpec s{8, 0, true};
  std::vector<float> w = {1e30f, -3.0f};
  const GroupParams p = choose_qparams(w.data(), 2, s);
  EXPECT_EQ(p.scale, kMaxHalf);
  const QuantSpec a{4, 0, false};
  std::vector<float> v = {-1e30f, 1e30f};
  const GroupParams q = choose_qparams(v.data(), 2, a);
  EXPECT_EQ(q.offset, -kMaxHalf);
  EXPECT_EQ(q.scale, kMaxHalf);
}

TEST(QuantMath, NonFiniteWeightsThrow) {
  const QuantSpec s{4, 0, true};
  std::vector<float> w = {1.0f, std::numeric_limits<float>::quiet_NaN(), 2.0f, 3.0f};
  EXPECT_THROW(choose_qparams(w.data(), 4, s), Error);
  EXPECT_THROW(quantize_matrix(w.data(), 1, 4, s), Error);
  w[1] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(quantize_matrix(w.data(), 2, 2, s), Error);
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 4, s, {0x3c00}, {}), Error);
}

TEST(QuantMath, ParamsAreFp16AndErrorIsBounded) {
  for (int bits = 2; bits <= 8; ++bits) {
    for (bool sym : {true, false}) {
      for (int group : {0, 32, 64}) {
        const QuantSpec s{bits, group, sym};
        const int64_t rows = 5, cols = 128;
        auto w = random_weights(rows * cols, uint32_t(bits * 100 + group + sym));
        const QuantizedMatrix q = quantize_matrix(w.data(), rows, cols, s);
        ASSERT_NO_THROW(q.validate("q"));
        std::vector<float> deq(w.size());
        dequantize_matrix(q, deq.data());
        const int64_t g = s.group_len(cols);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t k = 0; k < cols / g; ++k) {
            const GroupParams p = q.params(r, k);
            EXPECT_TRUE(is_fp16(p.scale) && is_fp16(p.offset));
            for (int64_t j = k * g; j < (k + 1) * g; ++j) {
              const size_t i = size_t(r * cols + j);
              EXPECT_EQ(deq[i], dequantize_one(q.codes[i], p, s));
              EXPECT_EQ(q.codes[i], quantize_one(w[i], p, s));
              // min-max ranges cover the group, up to fp16 rounding of the params
              EXPECT_LE(std::fabs(deq[i] - w[i]), 0.5f * p.scale * 1.01f + 1e-3f * p.scale * 16)
                  << s.name() << " r" << r << " j" << j;
            }
          }
        }
      }
    }
  }
}

TEST(QuantMath, SymmetricFakeQuantIsIdempotent) {
  const QuantSpec s{4, 32, true};
  auto w = random_weights(256, 7);
  const QuantizedMatrix q = quantize_matrix(w.data(), 2, 128, s);
  std::vector<float> deq(w.size());
  dequantize_matrix(q, deq.data());
  const QuantizedMatrix q2 = quantize_matrix_with(deq.data(), 2, 128, s, q.scales, q.offsets);
  EXPECT_EQ(q2.codes, q.codes);
}

TEST(QuantMath, MseClipNeverWorseThanMinMaxAndHelpsOutliers) {
  for (bool sym : {true, false}) {
    const QuantSpec s{4, 0, sym};
    auto w = random_weights(256, sym ? 11 : 12, 0.02f);
    w[17] = 0.5f;  // one outlier
    auto err = [&](const GroupParams& p) {
      double e = 0;
      for (float x : w) e += std::pow(double(fake_quantize_one(x, p, s)) - x, 2);
      return e;
    };
    const GroupParams mm = choose_qparams(w.data(), 256, s, ScaleInit::kMinMax);
    const GroupParams mse = choose_qparams(w.data(), 256, s, ScaleInit::kMseClip);
    EXPECT_TRUE(is_fp16(mse.scale) && is_fp16(mse.offset));
    EXPECT_LT(err(mse), err(mm)) << sym;
    EXPECT_LT(mse.scale, mm.scale);
    // on uniform data no clipping beats the full range by much; still never worse
    std::vector<float> u(64);
    for (size_t i = 0; i < u.size(); ++i) u[i] = -1.0f + 2.0f * float(i) / 63.0f;
    const GroupParams a = choose_qparams(u.data(), 64, s, ScaleInit::kMinMax);
    const GroupParams b = choose_qparams(u.data(), 64, s, ScaleInit::kMseClip);
    double ea = 0, eb = 0;
    for (float x : u) {
      ea += std::pow(double(fake_quantize_one(x, a, s)) - x, 2);
      eb += std::pow(double(fake_quantize_one(x, b, s)) - x, 2);
    }
    EXPECT_LE(eb, ea);
  }
}

TEST(QuantMath, QuantizeWithRejectsBadParams) {
  const QuantSpec s{4, 32, true};
  std::vector<float> w(64, 0.1f);
  EXPECT_NO_THROW(quantize_matrix_with(w.data(), 1, 64, s, {0x3c00, 0x3c00}, {}));
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 64, s, {0x3c00}, {}), Error);          // count
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 64, s, {0x3c00, 0x0000}, {}), Error);  // zero
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 64, s, {0x3c00, 0xbc00}, {}), Error);  // < 0
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 64, s, {0x3c00, 0x7c00}, {}), Error);  // inf
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 64, s, {0x3c00, 0x3c00}, {0, 0}), Error);
  const QuantSpec a{4, 32, false};
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 64, a, {0x3c00, 0x3c00}, {}), Error);
  EXPECT_THROW(quantize_matrix_with(w.data(), 1, 64, a, {0x3c00, 0x3c00}, {0, 0x7e00}), Error);
  EXPECT_THROW(quantize_matrix(w.data(), 1, 40, s), Error);  // group does not divide
  QuantizedMatrix q = quantize_matrix(w.data(), 1, 64, s);
  q.codes[5] = 16;
  std::vector<float> out(64);
  EXPECT_THROW(dequantize_matrix(q, out.data()), Error);
}

}  // namespace
}  // namespace qwenqat::quant
