// The int8-activation matmul kernel body (contract: kernels/act_quant.h),
// shared by avx2_q8.cpp (maddubs + madd) and avx_vnni_q8.cpp (vpdpbusd):
// include it inside a `#pragma GCC target` region, with QWENQAT_Q8_VNNI set
// to 0 or 1. Both forms compute the same exact int32 block sums and then the
// same float operations, so their results are identical bit for bit.
//
// In the manner of llama.cpp's ggml_vec_dot_q4_0_q8_0. Per 32-element block:
//   * 4-bit weights: the unsigned codes u (0..15) are unpacked to 32 bytes and
//     _mm256_maddubs_epi16(u, q) gives exact int16 pair sums (|.| <= 3810);
//     the zero point is applied once per row as zero * sum_k s_k * e_k.
//   * 8-bit weights: v = u - 128 (xor 0x80) and maddubs(|v|, sign(q, v)) gives
//     exact pair sums of v * q (|.| <= 32512); for symmetric weights v is the
//     signed weight, for asymmetric ones 128 * sum(q) is added back.
// _mm256_madd_epi16 with ones then gives 8 exact int32 lanes, converted to
// float (exact, |.| < 2^24) and FMAed with s_k * d_k into one accumulator per
// (weight row, activation row). The per-pair operation sequence does not
// depend on the batch or the row pairing, so a result does not depend on
// which sequences share a batch. Weight rows are processed one at a time for
// a single sequence, two at a time against up to kMaxPass activation rows
// otherwise.
#pragma once

#include <immintrin.h>

#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/avx2_util.h"

#ifndef QWENQAT_Q8_VNNI
#error "define QWENQAT_Q8_VNNI (0 or 1) before including avx2_q8_impl.h"
#endif

namespace qwenqat::engine::avx2 {
namespace {

// 8 int32 lanes, lane j = sum of the products of bytes 4j..4j+3 of the
// unsigned u and the signed q (exact: every pair sum fits int16 for the codes
// used here, |u * q + u' * q'| <= 32512). AVX-VNNI does it in one instruction.
inline __m256i dot_u8_s8(__m256i u, __m256i q) {
#if QWENQAT_Q8_VNNI
  return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, q);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, q), _mm256_set1_epi16(1));
#endif
}

constexpr int kMaxPass = 4;  // activation rows per pass

struct Q8Args {
  const format::PackedView* w;
  const int8_t* q;  // [n, cols]
  const float* d;   // [n, blocks]
  const float* eg;  // [n, groups] per-group sums of d * sum(q)
  float* y;
  int64_t y_stride;
};

// Weight rows [r, r + R) against activation rows [b0, b0 + B).
template <int kBits, int R, int B>
void q8_block(const Q8Args& a, int64_t r, int64_t b0) {
  const format::PackedView& w = *a.w;
  const int64_t cols = w.cols, blocks = cols / 32, groups = w.groups_per_row();
  const int64_t bpg = blocks / groups;
  const int8_t* q = a.q + b0 * cols;
  const float* d = a.d + b0 * blocks;
  __m256 acc[R][B];
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) acc[i][b] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    float s[R];
    for (int i = 0; i < R; ++i) s[i] = util::h2f(w.scales[(r + i) * groups + g]);
    for (int64_t k = g * bpg; k < (g + 1) * bpg; ++k) {
      __m256i wv[R], wa[R];
      for (int i = 0; i < R; ++i) {
        const uint8_t* row = w.data + (r + i) * w.row_bytes;
        if constexpr (kBits == 4) {
          wv[i] = util::unpack_q4_bytes(row + k * 16);
        } else {
          const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k * 32));
          wv[i] = _mm256_xor_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));
          wa[i] = _mm256_abs_epi8(wv[i]);
        }
      }
      for (int b = 0; b < B; ++b) {
        const __m256i qv =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + b * cols + k * 32));
        const float db = d[b * blocks + k];
        for (int i = 0; i < R; ++i) {
          __m256i p;
          if constexpr (kBits == 4) {
            p = dot_u8_s8(wv[i], qv);
          } else {
            p = dot_u8_s8(wa[i], _mm256_sign_epi8(qv, wv[i]));
          }
          acc[i][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s[i] * db), acc[i][b]);
        }
      }
    }
  }
  // The codes used above are u - c (c = 0 for 4 bits, 128 for 8 bits); the
  // weight is (u - zero) * s (+ o): add (c - zero) * s + o times e per group.
  const int c = kBits == 4 ? 0 : 128;
  const float cs = static_cast<float>(c - (w.spec.symmetric ? w.spec.zero_code() : 0));
  for (int i = 0; i < R; ++i) {
    const int64_t p = (r + i) * groups;
    for (int b = 0; b < B; ++b) {
      const float* eg = a.eg + (b0 + b) * groups;
      float corr = cs != 0.0f ? cs * util::dot_fp16(w.scales + p, eg, groups) : 0.0f;
      if (w.offsets) corr += util::dot_fp16(w.offsets + p, eg, groups);
      a.y[(b0 + b) * a.y_stride + r + i] = util::hsum(acc[i][b]) + corr;
    }
  }
}

template <int kBits, int R>
void q8_dispatch(const Q8Args& a, int64_t r, int64_t b0, int64_t nb) {
  switch (nb) {
    case 1:
      return q8_block<kBits, R, 1>(a, r, b0);
    case 2:
      return q8_block<kBits, R, 2>(a, r, b0);
    case 3:
      return q8_block<kBits, R, 3>(a, r, b0);
    case 4:
      return q8_block<kBits, R, 4>(a, r, b0);
  }
}

template <int kBits>
void q8_rows(const Q8Args& a, int64_t n, int64_t r0, int64_t r1) {
  const int64_t passes = (n + kMaxPass - 1) / kMaxPass;
  int64_t r = r0;
  if (n == 1) {  // decode: one weight row per iteration. Measured on weights
    // streamed from DRAM (kernel_bench --rows 151936 --cols 1536 --n 1), one
    // row reads 2x faster than four interleaved rows (10.1 vs 4.8 G MAC/s per
    // core for int4), though four win on L2-resident matrices.
    for (; r < r1; ++r) q8_block<kBits, 1, 1>(a, r, 0);
    return;
  }
  while (r < r1) {
    const bool pair = r + 2 <= r1;
    for (int64_t p = 0, b0 = 0; p < passes; ++p) {
      const int64_t b1 = n * (p + 1) / passes;
      if (pair) {
        q8_dispatch<kBits, 2>(a, r, b0, b1 - b0);
      } else {
        q8_dispatch<kBits, 1>(a, r, b0, b1 - b0);
      }
      b0 = b1;
    }
    r += pair ? 2 : 1;
  }
}

// y = w . x for rows [r0, r1) (the entry points of avx2_kernels.h).
void q8_matmul_rows_impl(const format::PackedView& w, const int8_t* q, const float* d,
                         const float* eg, int64_t n, float* y, int64_t y_stride, int64_t r0,
                         int64_t r1) {
  const Q8Args a{&w, q, d, eg, y, y_stride};
  if (w.spec.bits == 4) {
    q8_rows<4>(a, n, r0, r1);
  } else {
    q8_rows<8>(a, n, r0, r1);
  }
}

}  // namespace
}  // namespace qwenqat::engine::avx2
