// Helpers shared by the AVX-512 kernels (avx512_q8.cpp, attention_avx512.cpp).
// Include only inside a #pragma GCC target region that enables avx512f.
#pragma once

#include <immintrin.h>

namespace qwenqat::engine::avx512 {

// The lane sums of 16 vectors at once: out lane 4k + j = the sum of the 16
// lanes of v[4j + k]. Every output takes the same additions in the same
// order (halves, quarters, pairs, then the last two lanes), so a sum does not
// depend on the other 15 vectors: a tile that pads missing entries with zero
// vectors gives its real entries the bits of a full tile.
__attribute__((always_inline)) inline __m512 sum16x16(const __m512 v[16]) {
  __m512 s1[8];  // 256-bit half h of s1[m] = lanes j + lanes j + 8 of v[2m + h]
  for (int m = 0; m < 8; ++m) {
    const __m512 x = v[2 * m], y = v[2 * m + 1];
    s1[m] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  __m512 s2[4];  // 128-bit lane k of s2[p] = the quarter sums of v[4p + k]
  for (int p = 0; p < 4; ++p) {
    const __m512 x = s1[2 * p], y = s1[2 * p + 1];
    s2[p] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  __m512 s3[2];  // lane k: [x0 + x2, x1 + x3] of v[8h + k], then of v[8h + 4 + k]
  for (int h = 0; h < 2; ++h) {
    const __m512 x = s2[2 * h], y = s2[2 * h + 1];
    s3[h] = _mm512_add_ps(_mm512_shuffle_ps(x, y, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_ps(x, y, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_ps(s3[0], s3[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

}  // namespace qwenqat::engine::avx512
