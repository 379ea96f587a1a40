// Inline AVX2/F16C helpers shared by the avx2_*.cpp kernel files. Include this
// header only inside a `#pragma GCC target("avx2,fma,f16c")` region: the
// functions are compiled for AVX2 and must be reached only through the
// run-time dispatch in packed_matmul.cpp / act_quant.cpp. They are static
// (internal linkage): files compiled for different targets (avx_vnni_q8.cpp)
// each get their own copy, so no AVX-VNNI code can stand in for an AVX2 one.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "inference/kernels/prefetch.h"

namespace qwenqat::engine::avx2::util {

// fp16 -> float32 with F16C: exact, the same value as qwenqat::fp16_to_f32.
static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Sum of the 8 lanes in a fixed order (the same order everywhere).
static inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// The 32 codes of 4-bit chunk `bytes` as four vectors of 8 int32 (elements
// 0-7, 8-15, 16-23, 24-31).
static inline void unpack_q4_chunk(const uint8_t* bytes, __m256i out[4]) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i lo = _mm_and_si128(v, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask);
  out[0] = _mm256_cvtepu8_epi32(lo);
  out[1] = _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8));
  out[2] = _mm256_cvtepu8_epi32(hi);
  out[3] = _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8));
}

// The 32 codes of 4-bit chunk `bytes` as 32 bytes in element order (0..15).
static inline __m256i unpack_q4_bytes(const uint8_t* bytes) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 8 consecutive 8-bit codes as 8 int32.
static inline __m256i load_q8_8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// The 32 codes of 4-bit chunk k (kBits = 4) or 8-bit chunk k (kBits = 8) of a
// packed row as four vectors of 8 int32.
template <int kBits>
static inline void unpack_chunk(const uint8_t* row, int64_t k, __m256i c[4]) {
  if constexpr (kBits == 4) {
    unpack_q4_chunk(row + k * 16, c);
  } else {
    const uint8_t* p = row + k * 32;
    c[0] = load_q8_8(p);
    c[1] = load_q8_8(p + 8);
    c[2] = load_q8_8(p + 16);
    c[3] = load_q8_8(p + 24);
  }
}

// sum_g coef_g * v[g] with coef = the fp16 values at p (8 at a time, then a
// sequential tail).
static inline float dot_fp16(const uint16_t* p, const float* v, int64_t count) {
  __m256 acc = _mm256_setzero_ps();
  int64_t g = 0;
  for (; g + 8 <= count; g += 8) {
    const __m256 c = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + g)));
    acc = _mm256_fmadd_ps(c, _mm256_loadu_ps(v + g), acc);
  }
  float s = hsum(acc);
  for (; g < count; ++g) s += h2f(p[g]) * v[g];
  return s;
}

// The decode kernels' second stream: prefetches (T0) the fp16 scales of row
// r + ahead_rows of w (every cache line they touch), so that they arrive as
// far ahead as the codes the kernel prefetches. Addresses are formed as
// integers: past the last row the prefetch points past the array, harmlessly.
static inline void prefetch_row_scales(const uint16_t* scales, int64_t groups, int64_t r,
                                       int64_t ahead_rows) {
  const uintptr_t bytes = static_cast<uintptr_t>(groups) * 2;
  kernels::prefetch_range(
      reinterpret_cast<uintptr_t>(scales) + static_cast<uintptr_t>(r + ahead_rows) * bytes, bytes);
}

// Whole rows of row_bytes that cover a prefetch distance of `bytes`.
static inline int64_t rows_ahead(int64_t bytes, int64_t row_bytes) {
  return (bytes + row_bytes - 1) / row_bytes;
}

}  // namespace qwenqat::engine::avx2::util
