// Element-wise kernels (contracts: kernels/elementwise.h): scalar forms and
// AVX2 / F16C forms compiled with a target pragma, picked at run time.
#include "inference/kernels/elementwise.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "data/util/half.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "inference/kernels/avx2_math.h"

namespace qwenqat::engine {
namespace {

using avx2::math::exp8;

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

// vcvtps2ph with round to nearest even is f32_to_fp16 for every float but
// NaN (it keeps the payload's top bits; f32_to_fp16 gives 0x7e00 | sign): a
// group of 8 with a NaN goes through f32_to_fp16.
void f32_to_fp16_f16c(const float* x, uint16_t* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0) {
      for (int64_t j = i; j < i + 8; ++j) out[j] = f32_to_fp16(x[j]);
      continue;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) out[i] = f32_to_fp16(x[i]);
}

}  // namespace
}  // namespace qwenqat::engine

#pragma GCC pop_options

namespace qwenqat::engine {

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

void bf16_to_f32_row(const uint16_t* b, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(b[i]);
}

void f32_to_fp16_row(const float* x, uint16_t* out, int64_t n) {
  static const bool f16c = cpu_has_avx2();
  if (f16c) return f32_to_fp16_f16c(x, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_fp16(x[i]);
}

}  // namespace qwenqat::engine
