// Tests for data/util/half.h against exhaustive and hand-checked values.
#include "data/util/half.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace qwenqat {
namespace {

TEST(Half, Fp16RoundTripsEveryFiniteHalf) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t v = uint16_t(h);
    if ((v & 0x7c00) == 0x7c00) continue;  // inf/NaN
    EXPECT_EQ(f32_to_fp16(fp16_to_f32(v)), v) << std::hex << h;
  }
}

TEST(Half, Fp16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_fp16(1.0f), 0x3c00);
  // 1 + 2^-11 is halfway between 1 and 1+2^-10: ties to even (1.0).
  EXPECT_EQ(f32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(f32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7c00);  // overflow rounds to inf
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even: 0
  EXPECT_EQ(f32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(f32_to_fp16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isnan(fp16_to_f32(f32_to_fp16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Half, Fp16MatchesDoubleRoundingOnRandomFloats) {
  uint32_t s = 12345;
  for (int i = 0; i < 200000; ++i) {
    s = s * 1664525u + 1013904223u;
    float f = f32_from_bits((s & 0x8fffffffu) | 0x30000000u);  // ~[2^-31, 2^1] magnitudes
    if (!std::isfinite(f)) continue;
    float r = fp16_to_f32(f32_to_fp16(f));
    // r must be a nearest half: neighbours are no closer.
    uint16_t h = f32_to_fp16(f);
    double err = std::fabs(double(r) - double(f));
    if ((h & 0x7fff) < 0x7bff) {
      EXPECT_LE(err, std::fabs(double(fp16_to_f32(h + 1)) - f));
    }
    if ((h & 0x7fff) > 0) {
      EXPECT_LE(err, std::fabs(double(fp16_to_f32(h - 1)) - f));
    }
  }
}

TEST(Half, Bf16) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f808000u)), 0x3f80);  // tie to even
  EXPECT_EQ(f32_to_bf16(f32_from_bits(0x3f818000u)), 0x3f82);
}

}  // namespace
}  // namespace qwenqat
