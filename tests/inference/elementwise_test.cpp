// The element-wise kernels (kernels/elementwise.h): the AVX2 SwiGLU against
// the scalar std::exp form within kSwigluTolerance, per element independent of
// the array's length and split; the fp16 row conversion exact for every half.
#include "inference/kernels/elementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "data/util/half.h"
#include "tests/inference/engine_test_util.h"

namespace qwenqat::engine {
namespace {

std::vector<float> run_swiglu(std::vector<float> g, const std::vector<float>& u, KernelIsa isa) {
  swiglu(g.data(), u.data(), static_cast<int64_t>(g.size()), isa);
  return g;
}

TEST(Elementwise, SwigluAvx2MatchesScalar) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(1);
  // Gate values over the whole range silu sees, plus the clamp's edges.
  auto g = testing::random_vector(4099, 12.0f, rng);
  for (float v : {0.0f, -0.0f, 1e-30f, -87.0f, -88.0f, 88.0f, 89.0f, -200.0f, 200.0f, 3e38f})
    g.push_back(v);
  const auto u = testing::random_vector(static_cast<int64_t>(g.size()), 2.0f, rng);
  const auto ref = run_swiglu(g, u, KernelIsa::kScalar);
  const auto got = run_swiglu(g, u, KernelIsa::kAvx2);
  for (size_t i = 0; i < g.size(); ++i) {
    // Below g = -87 the exact result is under 1e-36 in magnitude: the vector
    // form's clamp gives ~1e-37 there, the scalar one 0.
    ASSERT_NEAR(got[i], ref[i], kSwigluTolerance * std::abs(ref[i]) + 1e-35f)
        << "g = " << g[i] << ", u = " << u[i];
  }
  // NaN stays NaN.
  const auto nan = run_swiglu({std::numeric_limits<float>::quiet_NaN()}, {1.0f}, KernelIsa::kAvx2);
  EXPECT_TRUE(std::isnan(nan[0]));
}

TEST(Elementwise, SwigluResultDoesNotDependOnTheSplit) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(2);
  const auto g = testing::random_vector(37, 6.0f, rng), u = testing::random_vector(37, 1.0f, rng);
  const auto whole = run_swiglu(g, u, KernelIsa::kAvx2);
  for (int64_t cut : {1, 5, 8, 13, 36}) {  // two calls, the second starting mid-vector
    auto parts = g;
    swiglu(parts.data(), u.data(), cut, KernelIsa::kAvx2);
    swiglu(parts.data() + cut, u.data() + cut, 37 - cut, KernelIsa::kAvx2);
    EXPECT_EQ(0, std::memcmp(whole.data(), parts.data(), whole.size() * 4)) << "cut " << cut;
  }
}

TEST(Elementwise, Fp16RowIsExactForEveryHalf) {
  std::vector<uint16_t> h(65536 + 3);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);  // + a ragged tail
  std::vector<float> out(h.size());
  fp16_to_f32_row(h.data(), out.data(), static_cast<int64_t>(h.size()));
  for (size_t i = 0; i < h.size(); ++i) {
    const float want = fp16_to_f32(h[i]);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(out[i])) << "half 0x" << std::hex << h[i];
    } else {
      ASSERT_EQ(0, std::memcmp(&want, &out[i], 4)) << "half 0x" << std::hex << h[i];
    }
  }
}

}  // namespace
// f32_to_fp16_row against f32_to_fp16 on every half's float value, the
// midpoints between neighbouring halves (ties go to even) and one ulp either
// side of them, the overflow boundary, subnormal results, NaNs with payloads
// (in a group of 8 and in the tail) and random floats.
TEST(Elementwise, FloatToFp16RowEqualsTheScalarRounding) {
  std::vector<float> x;
  for (uint32_t hb = 0; hb < 0x7c00; ++hb) {
    for (const float sign : {1.0f, -1.0f}) {
      const float a = fp16_to_f32(static_cast<uint16_t>(hb)) * sign;
      const float b = fp16_to_f32(static_cast<uint16_t>(hb + 1)) * sign;
      const float mid = a + (b - a) / 2;  // exact: a float has room for it
      x.insert(x.end(), {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 2 * b)});
    }
  }
  for (const float f : {65504.0f, 65519.99f, 65520.0f, 1e30f, 5.9e-8f, 2.9e-8f, 3.0e-8f, 1e-40f})
    x.insert(x.end(), {f, -f});
  std::mt19937 rng(5);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t bits = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &bits, 4);
    x.push_back(f);  // NaNs with random payloads among them
  }
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  const uint32_t payload = 0x7fc01234u;
  float pn;
  std::memcpy(&pn, &payload, 4);
  x.push_back(pn);  // a NaN in the tail
  std::vector<uint16_t> out(x.size());
  f32_to_fp16_row(x.data(), out.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(f32_to_fp16(x[i]), out[i]) << "float " << x[i] << " at " << i;
}

}  // namespace qwenqat::engine
