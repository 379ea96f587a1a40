// The sampler's pass over the vocabulary (kernels/sample_weights.h): the
// portable exp against avx2::math::exp8 bit for bit and against std::exp, and
// the scalar and AVX2 forms of the maximum and the weights with the same bits.
#include "inference/kernels/sample_weights.h"

#include <gtest/gtest.h>
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "inference/kernels/avx2_math.h"
namespace {
// exp8 on x[0, 8) into out.
void exp8_of(const float* x, float* out) {
  _mm256_storeu_ps(out, qwenqat::engine::avx2::math::exp8(_mm256_loadu_ps(x)));
}
}  // namespace
#pragma GCC pop_options

namespace qwenqat::engine {
namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// The same bits as exp8 over [-87.3, 88.7]: about 2.3 million floats spread
// over every binade of that range (a stride through the bit patterns of
// each sign), and the ends.
TEST(SampleWeights, ExpPortableIsExp8BitForBit) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2: exp8 cannot run here";
  std::vector<float> xs = {0.0f, -0.0f, kExpWeightFloor, 88.7f, -1e-30f, 1e-30f, -87.0f};
  for (uint32_t b = 0; b <= bits_of(87.3f); b += 907) {
    float f;
    std::memcpy(&f, &b, 4);
    xs.push_back(-f);
    if (f <= 88.7f) xs.push_back(f);
  }
  while (xs.size() % 8) xs.push_back(0.0f);
  std::vector<float> ref(xs.size());
  for (size_t i = 0; i < xs.size(); i += 8) exp8_of(&xs[i], &ref[i]);
  int64_t mismatches = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (bits_of(exp_portable(xs[i])) != bits_of(ref[i]) && ++mismatches <= 5)
      ADD_FAILURE() << "x " << xs[i] << ": " << exp_portable(xs[i]) << " vs exp8 " << ref[i];
  }
  EXPECT_EQ(mismatches, 0);
}

// Within 2 ulp of std::exp over the normal range; 0 below the floor.
TEST(SampleWeights, ExpPortableIsCloseToStdExp) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> u(-87.0f, 88.0f);
  for (int i = 0; i < 200000; ++i) {
    const float x = u(gen);
    const float e = std::exp(x), p = exp_portable(x);
    ASSERT_LE(std::abs(p - e), 2.4e-7f * e) << "x " << x;
  }
  EXPECT_EQ(exp_portable(-87.31f), 0.0f);
  EXPECT_EQ(exp_portable(-1e30f), 0.0f);
  EXPECT_EQ(exp_portable(0.0f), 1.0f);
}

TEST(SampleWeights, ScalarAndAvx2FormsGiveTheSameBits) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2";
  std::mt19937 gen(2);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  for (int64_t n : {1, 7, 8, 9, 100, 151936}) {
    std::vector<float> x(n);
    for (auto& v : x) v = nd(gen);
    x[gen() % n] = 40.0f;  // quotients far below the floor at small temperatures
    for (float t : {0.01f, 0.6f, 1.7f}) {
      float mx_s = 0.0f, mx_v = 0.0f;
      ASSERT_TRUE(max_if_finite(x.data(), n, &mx_s, KernelIsa::kScalar));
      ASSERT_TRUE(max_if_finite(x.data(), n, &mx_v, KernelIsa::kAvx2));
      ASSERT_EQ(mx_s, 40.0f);
      ASSERT_EQ(mx_v, 40.0f);
      std::vector<float> ws(n), wv(n);
      const double ts = exp_weights(x.data(), n, mx_s, t, ws.data(), KernelIsa::kScalar);
      const double tv = exp_weights(x.data(), n, mx_v, t, wv.data(), KernelIsa::kAvx2);
      EXPECT_EQ(std::memcmp(ws.data(), wv.data(), n * sizeof(float)), 0) << n << " T " << t;
      EXPECT_EQ(std::memcmp(&ts, &tv, sizeof(double)), 0) << n << " T " << t;
      double sum = 0.0;
      for (float w : ws) sum += w;
      EXPECT_NEAR(ts, sum, 1e-12 * sum) << n;
      EXPECT_GE(ts, 1.0);  // the largest weighs exp(0) = 1
    }
  }
}

// The total in the documented order: weights below half an ulp of 1 are
// lost where they join the partial sum that holds the largest weight and
// kept elsewhere, so another partition of the sums gives another total.
TEST(SampleWeights, TotalIsSummedInTheDocumentedOrder) {
  const int64_t n = 151937;
  std::vector<float> x(n);
  std::mt19937 gen(4);
  std::uniform_real_distribution<float> u(-39.5f, -38.5f);  // weights ~1e-17
  for (auto& v : x) v = u(gen);
  x[8] = 0.0f;  // the largest, weight 1, in partial sum 0
  for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
    if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
    std::vector<float> w(n);
    const double total = exp_weights(x.data(), n, 0.0f, 1.0f, w.data(), isa);
    double s[8] = {};
    for (int64_t i = 0; i < n; ++i) s[i % 8] += w[i];
    const double want = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    EXPECT_EQ(total, want) << (isa == KernelIsa::kScalar ? "scalar" : "avx2");
    EXPECT_GT(total, 1.0 + 1e-13);  // the seven other partial sums kept theirs
  }
}

// A NaN or an infinity anywhere (the vector body or the tail) is reported.
TEST(SampleWeights, MaxIfFiniteFindsNansAndInfinities) {
  for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
    if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY}) {
      for (int64_t at : {0, 5, 37, 99}) {
        std::vector<float> x(100, -3.0f);
        x[at] = bad;
        float mx = 0.0f;
        EXPECT_FALSE(max_if_finite(x.data(), 100, &mx, isa)) << bad << " at " << at;
      }
    }
    std::vector<float> x(21, -2.0f);
    x[19] = -1.5f;  // in the tail
    float mx = 0.0f;
    EXPECT_TRUE(max_if_finite(x.data(), 21, &mx, isa));
    EXPECT_EQ(mx, -1.5f);
  }
}

}  // namespace
}  // namespace qwenqat::engine
