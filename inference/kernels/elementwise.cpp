// Element-wise kernels (contracts: kernels/elementwise.h): scalar forms and
// AVX2 / F16C forms compiled with a target pragma, picked at run time.
#include "inference/kernels/elementwise.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "data/util/half.h"

namespace qwenqat::engine {
namespace {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

// 2^k for integer lanes -126 <= k <= 127, through the exponent bits.
inline __m256 pow2(__m256i k) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

// exp(x) for 8 lanes: x = n ln2 + r (n = round(x log2 e), r by Cody-Waite
// with ln2 split in two), exp(r) by Cephes' degree-7 polynomial, times 2^n
// through the exponent bits. x is clamped to [-87.3, 88.7] (the result stays
// a finite normal float; silu needs no more), NaN stays NaN through the
// caller's g / (1 + e).
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n: n in [-126, 128] after the clamp; 2^128 as 2 * 2^127.
  const __m256i e = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(e, 1);
  return _mm256_mul_ps(_mm256_mul_ps(p, pow2(half)), pow2(_mm256_sub_epi32(e, half)));
}

inline __m256 swiglu8(__m256 g, __m256 u) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

void swiglu_avx2(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(g + i, swiglu8(_mm256_loadu_ps(g + i), _mm256_loadu_ps(u + i)));
  if (i < n) {  // the same vector operations on a padded copy
    alignas(32) float gt[8] = {}, ut[8] = {};
    std::copy(g + i, g + n, gt);
    std::copy(u + i, u + n, ut);
    _mm256_store_ps(gt, swiglu8(_mm256_load_ps(gt), _mm256_load_ps(ut)));
    std::copy(gt, gt + (n - i), g + i);
  }
}

void fp16_to_f32_f16c(const uint16_t* h, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i,
                     _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) out[i] = fp16_to_f32(h[i]);
}

#pragma GCC pop_options

}  // namespace

void swiglu(float* g, const float* u, int64_t n, KernelIsa isa) {
  if (isa == KernelIsa::kAvx2) return swiglu_avx2(g, u, n);
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    g[i] = gi / (1.0f + std::exp(-gi)) * u[i];
  }
}

void fp16_to_f32_row(const uint16_t* h, float* out, int64_t n) {
  static const bool f16c = cpu_has_avx2();  // (which checks for F16C too)
  if (f16c) return fp16_to_f32_f16c(h, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_f32(h[i]);
}

}  // namespace qwenqat::engine
