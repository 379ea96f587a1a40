// The sampler's pass over the vocabulary (contract: kernels/sample_weights.h):
// the scalar forms and AVX2 forms compiled with a target pragma, picked by
// KernelIsa. The two forms take the same IEEE operations in the same order,
// so they give the same bits.
#include "inference/kernels/sample_weights.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "data/util/half.h"

namespace qwenqat::engine {
namespace {

// 2^k for -126 <= k <= 127 through the exponent bits (avx2::math::pow2).
inline float pow2(int32_t k) { return f32_from_bits(static_cast<uint32_t>(k + 127) << 23); }

// Folds x[begin, n) into the running maximum and finiteness (both forms).
inline void fold_max_finite(const float* x, int64_t begin, int64_t n, float* best, bool* finite) {
  for (int64_t i = begin; i < n; ++i) {
    *finite = *finite && std::isfinite(x[i]);
    *best = std::max(*best, x[i]);
  }
}

// exp_portable. Always inlined: where the caller is compiled for FMA
// (exp_weights_fma) std::fma becomes the instruction, elsewhere a libm call.
__attribute__((always_inline)) inline float exp_lanewise(float x) {
  if (!(x >= kExpWeightFloor)) return 0.0f;
  x = std::min(x, 88.7f);
  // exp8's operations one by one; std::fma for its fused multiply-adds.
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = std::fma(-n, 0.693359375f, x);
  r = std::fma(-n, -2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = std::fma(p, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  const float r2 = r * r, r1 = r + 1.0f;
  p = std::fma(p, r2, r1);
  const int32_t e = static_cast<int32_t>(n), half = e >> 1;
  const float scaled = p * pow2(half);
  return scaled * pow2(e - half);
}

// exp_weights one candidate at a time (kScalar; contract in the header).
__attribute__((always_inline)) inline double exp_weights_lanewise(const float* x, int64_t n,
                                                                  float mx, float t, float* w) {
  double s[8] = {};
  for (int64_t i = 0; i < n; ++i) {
    w[i] = exp_lanewise((x[i] - mx) / t);
    s[i % 8] += w[i];
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

}  // namespace
}  // namespace qwenqat::engine

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "inference/kernels/avx2_math.h"

namespace qwenqat::engine {
namespace {

bool max_if_finite_avx2(const float* x, int64_t n, float* mx) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 nan = _mm256_setzero_ps();  // x - x: 0 for finite x, NaN otherwise
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    m = _mm256_max_ps(m, v);
    nan = _mm256_add_ps(nan, _mm256_sub_ps(v, v));
  }
  alignas(32) float mv[8], nv[8];
  _mm256_store_ps(mv, m);
  _mm256_store_ps(nv, nan);
  float best = mv[0];
  bool finite = true;
  for (int j = 0; j < 8; ++j) {
    best = std::max(best, mv[j]);
    finite = finite && nv[j] == 0.0f;
  }
  fold_max_finite(x, i, n, &best, &finite);
  *mx = best;
  return finite;
}

// The weights of 8 logits: exp8 of the quotients, 0 below the floor.
inline __m256 weight8(__m256 l, __m256 mx, __m256 t) {
  const __m256 q = _mm256_div_ps(_mm256_sub_ps(l, mx), t);
  const __m256 keep = _mm256_cmp_ps(q, _mm256_set1_ps(kExpWeightFloor), _CMP_GE_OQ);
  return _mm256_and_ps(avx2::math::exp8(q), keep);
}

double exp_weights_avx2(const float* x, int64_t n, float mx, float t, float* w) {
  const __m256 mv = _mm256_set1_ps(mx), tv = _mm256_set1_ps(t);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();  // partial sums 0-3, 4-7
  const auto add = [&](__m256 e) {
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  };
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = weight8(_mm256_loadu_ps(x + i), mv, tv);
    _mm256_storeu_ps(w + i, e);
    add(e);
  }
  if (i < n) {  // the tail padded with mx; the padding's weights add 0
    alignas(32) float pad[8];
    std::fill(pad, pad + 8, mx);
    std::copy(x + i, x + n, pad);
    _mm256_store_ps(pad, weight8(_mm256_load_ps(pad), mv, tv));
    std::copy(pad, pad + (n - i), w + i);
    std::fill(pad + (n - i), pad + 8, 0.0f);
    add(_mm256_load_ps(pad));
  }
  alignas(32) double s[8];
  _mm256_store_pd(s, lo);
  _mm256_store_pd(s + 4, hi);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

// The scalar form with the FMA instruction (the same operations).
double exp_weights_fma(const float* x, int64_t n, float mx, float t, float* w) {
  return exp_weights_lanewise(x, n, mx, t, w);
}

}  // namespace
}  // namespace qwenqat::engine

#pragma GCC pop_options

namespace qwenqat::engine {

float exp_portable(float x) { return exp_lanewise(x); }

bool max_if_finite(const float* x, int64_t n, float* mx, KernelIsa isa) {
  if (isa == KernelIsa::kAvx2) return max_if_finite_avx2(x, n, mx);
  bool finite = true;
  float best = x[0];
  fold_max_finite(x, 0, n, &best, &finite);
  *mx = best;
  return finite;
}

double exp_weights(const float* x, int64_t n, float mx, float t, float* w, KernelIsa isa) {
  if (isa == KernelIsa::kAvx2) return exp_weights_avx2(x, n, mx, t, w);
  static const bool fma = __builtin_cpu_supports("fma");
  if (fma) return exp_weights_fma(x, n, mx, t, w);
  return exp_weights_lanewise(x, n, mx, t, w);
}

}  // namespace qwenqat::engine
