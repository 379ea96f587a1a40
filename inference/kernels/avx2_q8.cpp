// The AVX2 int8-activation matmul: avx2_q8_impl.h with maddubs + madd for
// the byte dot products (any AVX2 CPU); and the AVX2 Q8 activation quantizer.
#include <immintrin.h>

#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/seq_blocks.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#define QWENQAT_Q8_VNNI 0
#include "inference/kernels/avx2_q8_impl.h"

namespace qwenqat::engine::avx2 {

void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, const float* eg, float* y,
                    int64_t y_stride, int64_t r0, int64_t r1) {
  q8_matmul_rows_impl(w, x, eg, y, y_stride, r0, r1);
}

void quantize_q8_rows(const float* x, int64_t n, int64_t x_stride, int64_t cols, int8_t* q,
                      float* d, float* e, int32_t* qsum) {
  const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.0f),
               hi = _mm256_set1_ps(127.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const int64_t blocks = cols / 32;
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t k = 0; k < blocks; ++k) {
      const float* xs = x + b * x_stride + k * 32;
      __m256 v[4], m = _mm256_setzero_ps();
      for (int j = 0; j < 4; ++j) {
        v[j] = _mm256_loadu_ps(xs + 8 * j);
        m = _mm256_max_ps(_mm256_andnot_ps(sign, v[j]), m);  // a NaN is skipped, as std::max
      }
      __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
      h = _mm_max_ps(h, _mm_movehl_ps(h, h));
      h = _mm_max_ss(h, _mm_movehdup_ps(h));
      const float amax = _mm_cvtss_f32(h);
      const float dk = amax / 127.0f;
      const __m256 id = _mm256_set1_ps(dk > 0.0f ? 1.0f / dk : 0.0f);
      __m256i c[4];
      for (int j = 0; j < 4; ++j) {
        const __m256 r =
            _mm256_round_ps(_mm256_mul_ps(v[j], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        c[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi));
      }
      const __m256i p =
          _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + b * cols + k * 32),
                          _mm256_permutevar8x32_epi32(p, order));
      const __m256i s4 =
          _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
      __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
      s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
      d[b * blocks + k] = dk;
      qsum[b * blocks + k] = _mm_cvtsi128_si32(s);
      e[b * blocks + k] = dk * static_cast<float>(qsum[b * blocks + k]);
    }
  }
}

}  // namespace qwenqat::engine::avx2

#pragma GCC pop_options
