// The int8-activation matmul kernel body (contract: kernels/act_quant.h),
// shared by avx2_q8.cpp (maddubs + madd) and avx_vnni_q8.cpp (vpdpbusd):
// include it inside a `#pragma GCC target` region, with QWENQAT_Q8_VNNI set
// to 0 or 1. Both forms compute the same exact int32 block sums and then the
// same float operations, so their results are identical bit for bit.
//
// In the manner of llama.cpp's ggml_vec_dot_q4_0_q8_0. Per 32-element block:
//   * 4-bit weights: the unsigned codes u (0..15) are unpacked to 32 bytes and
//     _mm256_maddubs_epi16(u, q) gives exact int16 pair sums (|.| <= 3810);
//     the zero point 8 of symmetric codes is taken off the int32 block sum
//     as 8 * sum(q) (Q8Activations::qsum). _mm256_madd_epi16 with ones then
//     gives 8 exact int32 lanes, converted to float (exact, |.| < 2^24) and
//     FMAed with s_k * d_k into one accumulator per (weight row, activation
//     row). Weight rows are processed one at a time for a single sequence,
//     two at a time against up to kMaxPass activation rows otherwise.
//   * 8-bit weights (w8_block): v = u - 128 (xor 0x80) and maddubs(|v|,
//     sign(q, v)) + madd give the exact int32 products of v * q (pair sums
//     |.| <= 32512); for symmetric weights v is the signed weight, for
//     asymmetric ones 128 * sum(q) is added back. The 8 lanes of 8 blocks are
//     reduced by hadds to one vector of the 8 exact block sums, so the float
//     part is one convert + FMA by s * d per 8 blocks (the per-block form, a
//     scalar s * d, a broadcast and an FMA per block, ran at 16 G MAC/s per
//     core at n = 1 on L2-resident rows, this one at 23). One row at a time
//     against up to kMaxPass8 activation rows.
// The operation sequence per (row, sequence) does not depend on the batch or
// the row pairing, so a result does not depend on which sequences share a
// batch. Weight rows are read kPrefetchBytes ahead by software prefetch.
//
// 4-bit rows with block-interleaved activations (Q8Activations::qi with
// il_chunk = 8) take each full chunk of 8 blocks another way, as the AVX-512
// kernel takes 16: the 128 packed bytes are transposed as 4 x 4 dwords in each
// 128-bit half (unpacklo/hi) into 8 vectors whose lane m holds four codes of
// block sigma(m) = 2 * (m % 4) + m / 4; qi holds the activations in that
// order, so 8 maddubs summed in int16 (exact: |8 pair sums| <= 8 * 3810) and
// one madd give the 8 exact block sums in the 8 lanes (AVX-VNNI: 8 vpdpbusd),
// and one convert + FMA by s * d does the float part: 19 vector operations per
// 8 blocks and sequence instead of 8 x 5. Such rows are processed one at a
// time against up to kMaxIlPass sequences; the rest of the row (blocks past
// the last full chunk) as above. 8-bit rows at n >= 2 take the same chunks
// (w8_il_rows): v = u - 128 transposed alike, 8 maddubs(|v|, sign(q, v)) +
// madd per chunk and sequence instead of the hadds, the float accumulators
// permuted back to block order so that they hold w8_block's bits. The 8-bit
// rows' functions are in avx2_q8_w8.h, included below.
#pragma once

#include <immintrin.h>

#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/avx2_util.h"
#include "inference/kernels/seq_blocks.h"

#ifndef QWENQAT_Q8_VNNI
#error "define QWENQAT_Q8_VNNI (0 or 1) before including avx2_q8_impl.h"
#endif

namespace qwenqat::engine::avx2 {
namespace {

using kernels::over_passes;
using kernels::over_seq_blocks;

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

constexpr int kMaxPass = 4;    // activation rows per pass
constexpr int kIlChunk = 8;    // blocks per interleaved chunk (Q8Activations::il_chunk)
constexpr int kMaxIlPass = 8;  // activation rows per pass over an interleaved 4-bit row
constexpr int kMaxPass8 = 4;   // activation rows per pass over an 8-bit row
// Activation bytes per sequence block of the interleaved 4-bit rows: small
// enough for L1 (each chunk is unpacked per pass anyway, so small blocks cost
// only the rows' re-reads). Zen 5, AVX2 level, three alternating runs: 8960 x
// 1536 n = 128 56-58 G MAC/s per core with 128 KB (kSeqBlockBytes) -> 65-67
// with 24 KB, 62-64 with 32 KB, 57-59 with 48 KB; DRAM-streamed 151936 x 1536
// 56-59 -> 65-68. (The 8-bit rows, unpacked once per block, gained nothing.)
constexpr int64_t kW4SeqBlockBytes = 24 << 10;
// Software prefetch distance on a weight row (kernel_bench on DRAM-streamed
// rows, AVX2: 1-2 KB ahead +36 % (8-bit) and +39 % (4-bit) over none).
constexpr int kPrefetchBytes = 2048;

struct Q8Args {
  const format::PackedView* w;
  const int8_t* q;  // [n, cols]
  // With qi: the kernel takes the full chunks (blocks / 8) of each row's
  // il_chunks (Q8Activations::il_chunks: the row stride; a padded last
  // chunk is not used), the blocks past them from q.
  const int8_t* qi;      // [n, il_chunks * 256] block-interleaved q (il_chunk 8), or nullptr
  const float* di;       // [n, il_chunks * 8] d in the same order (with qi)
  const int32_t* qsumi;  // [n, il_chunks * 8] qsum in the same order (with qi)
  int64_t il_chunks;
  const float* d;       // [n, blocks]
  const int32_t* qsum;  // [n, blocks] sum(q) per block
  const float* eg;      // [n, groups] per-group sums of d * sum(q)
  float* y;
  int64_t y_stride;
};

// The 4 x 4 dword transpose within each 128-bit half h: out[t] half h =
// dword t of half h of in[0..3].
inline void transpose_dwords(const __m256i in[4], __m256i out[4]) {
  const __m256i t0 = _mm256_unpacklo_epi32(in[0], in[1]), t1 = _mm256_unpackhi_epi32(in[0], in[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(in[2], in[3]), t3 = _mm256_unpackhi_epi32(in[2], in[3]);
  out[0] = _mm256_unpacklo_epi64(t0, t2);
  out[1] = _mm256_unpackhi_epi64(t0, t2);
  out[2] = _mm256_unpacklo_epi64(t1, t3);
  out[3] = _mm256_unpackhi_epi64(t1, t3);
}

// The codes of the 8 blocks of a 4-bit chunk (128 packed bytes at p),
// interleaved: w[t] lane m = the codes of elements 4t..4t+3 of block sigma(m)
// of the chunk (four bytes), the layout of Q8Activations::qi.
inline void unpack_q4_chunk8(const uint8_t* p, __m256i w[8]) {
  __m256i in[4], v[4];  // in[i]: blocks (2i, 2i + 1)
  for (int i = 0; i < 4; ++i)
    in[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32 * i));
  transpose_dwords(in, v);
  const __m256i mask = _mm256_set1_epi8(0x0f);
  for (int t = 0; t < 4; ++t) {
    w[t] = _mm256_and_si256(v[t], mask);                            // elements 4t..
    w[t + 4] = _mm256_and_si256(_mm256_srli_epi32(v[t], 4), mask);  // 16 + 4t..
  }
}

// Lane m = the exact int32 sum of u * q over block sigma(m) of the chunk
// (w from unpack_q4_chunk8, qi the chunk's 256 interleaved activation bytes).
inline __m256i chunk_isum(const __m256i w[8], const int8_t* qi) {
  const auto ld = [qi](int t) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qi + 32 * t));
  };
#if QWENQAT_Q8_VNNI
  __m256i c0 = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w[0], ld(0));
  __m256i c1 = _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), w[1], ld(1));
  for (int t = 2; t < 8; t += 2) {
    c0 = _mm256_dpbusd_avx_epi32(c0, w[t], ld(t));
    c1 = _mm256_dpbusd_avx_epi32(c1, w[t + 1], ld(t + 1));
  }
  return _mm256_add_epi32(c0, c1);
#else
  // Codes 0..15 and q in [-127, 127]: a pair sum is at most 3810 in magnitude,
  // so the 8 pair sums of a lane add up exactly in int16.
  __m256i s0 = _mm256_maddubs_epi16(w[0], ld(0)), s1 = _mm256_maddubs_epi16(w[1], ld(1));
  for (int t = 2; t < 8; t += 2) {
    s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(w[t], ld(t)));
    s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(w[t + 1], ld(t + 1)));
  }
  return _mm256_madd_epi16(_mm256_add_epi16(s0, s1), _mm256_set1_epi16(1));
#endif
}

// The weight scales of blocks k0 + o(m), m < count <= 8, of row r (k0 a
// multiple of 8; lanes past count: anything finite): o(m) = sigma(m) = 2 * (m
// % 4) + m / 4 (the interleaved order) when kSigma, else m.
template <bool kSigma>
inline __m256 chunk_scales(const format::PackedView& w, int64_t r, int64_t k0, int count,
                           int64_t groups, int64_t bpg) {
  const uint16_t* s = w.scales + r * groups;
  if (bpg == 1 && count == kIlChunk) {
    const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k0)));
    return kSigma ? _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)) : v;
  }
  if (bpg % kIlChunk == 0) return _mm256_set1_ps(util::h2f(s[k0 / bpg]));  // one group
  alignas(16) uint16_t h[kIlChunk] = {};
  for (int m = 0; m < count; ++m) h[m] = s[(k0 + (kSigma ? 2 * (m % 4) + m / 4 : m)) / bpg];
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(h)));
}

// 4-bit weight rows [r, r + R) against activation rows [b0, b0 + B).
template <int R, int B>
void w4_block(const Q8Args& a, int64_t r, int64_t b0) {
  const format::PackedView& w = *a.w;
  const int64_t cols = w.cols, blocks = cols / 32, groups = w.groups_per_row();
  const int64_t bpg = blocks / groups;
  const int8_t* q = a.q + b0 * cols;
  const float* d = a.d + b0 * blocks;
  const int32_t* qsum = a.qsum + b0 * blocks;
  // 4-bit symmetric codes u have zero point 8: the block sums of (u - 8) * q
  // are formed exactly as sum(u * q) - 8 * sum(q) (zero_shift = 3).
  const bool zero8 = w.spec.symmetric;
  __m256 acc[R][B];
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) acc[i][b] = _mm256_setzero_ps();
  int64_t k_il = 0;  // blocks [0, k_il) taken from the interleaved chunks
  if constexpr (R == 1) {
    if (a.qi) {
      const int64_t chunks = blocks / kIlChunk;
      const uint8_t* row = w.data + r * w.row_bytes;
      for (int64_t c = 0; c < chunks; ++c) {
        __m256i wv[8];
        // The chunk's 2 cache lines, kPrefetchBytes ahead; in decode (B = 1)
        // also into L2 four times as far (paired per step, w4g32 decode on
        // Zen 5: AVX-VNNI median 0.94x time over 12 runs, 0.92-1.00; AVX2
        // 0.97x over 9, 0.96-1.03; for 8-bit rows, w8_block, 0.96-1.03 in
        // four runs: not taken).
        const uint8_t* chunk = row + c * kIlChunk * 16;
        if constexpr (B == 1) {
          kernels::prefetch_l1_l2<2>(chunk, kPrefetchBytes, 4 * kPrefetchBytes);
        } else {
          kernels::prefetch_lines<2>(chunk, kPrefetchBytes);
        }
        unpack_q4_chunk8(chunk, wv);
        const __m256 s = chunk_scales<true>(w, r, c * kIlChunk, kIlChunk, groups, bpg);
        for (int b = 0; b < B; ++b) {
          const int64_t at = (b0 + b) * a.il_chunks + c;  // chunk index in qi / di
          const __m256 sd = _mm256_mul_ps(s, _mm256_loadu_ps(a.di + at * kIlChunk));
          __m256i isum = chunk_isum(wv, a.qi + at * kIlChunk * 32);
          if (zero8) {
            const __m256i qs =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qsumi + at * kIlChunk));
            isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(qs, 3));
          }
          acc[0][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), sd, acc[0][b]);
        }
      }
      k_il = chunks * kIlChunk;
    }
  }
  for (int64_t g = k_il / bpg; g < groups; ++g) {
    float s[R];
    for (int i = 0; i < R; ++i) s[i] = util::h2f(w.scales[(r + i) * groups + g]);
    for (int64_t k = g * bpg < k_il ? k_il : g * bpg; k < (g + 1) * bpg; ++k) {
      __m256i wv[R];
      for (int i = 0; i < R; ++i)
        wv[i] = util::unpack_q4_bytes(w.data + (r + i) * w.row_bytes + k * 16);
      for (int b = 0; b < B; ++b) {
        const __m256i qv =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + b * cols + k * 32));
        const float db = d[b * blocks + k];
        const __m256i zq =
            _mm256_setr_epi32(zero8 ? 8 * qsum[b * blocks + k] : 0, 0, 0, 0, 0, 0, 0, 0);
        for (int i = 0; i < R; ++i) {
          const __m256i p = _mm256_sub_epi32(dot_u8_s8(wv[i], qv), zq);  // lane 0: -8 * sum(q)
          acc[i][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(s[i] * db), acc[i][b]);
        }
      }
    }
  }
  // The codes used above are u - c (c = 8 for symmetric, 0 for asymmetric
  // rows); the weight is (u - zero) * s (+ o): add (c - zero) * s + o times e
  // per group (zero for these; w8_block has c = 128).
  const int c = zero8 ? 8 : 0;
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

template <int R>
void w4_dispatch(const Q8Args& a, int64_t r, int64_t b0, int64_t nb) {
  switch (nb) {
    case 1:
      return w4_block<R, 1>(a, r, b0);
    case 2:
      return w4_block<R, 2>(a, r, b0);
    case 3:
      return w4_block<R, 3>(a, r, b0);
    case 4:
      return w4_block<R, 4>(a, r, b0);
  }
  if constexpr (R == 1) {  // interleaved 4-bit rows: passes of up to kMaxIlPass
    switch (nb) {
      case 5:
        return w4_block<1, 5>(a, r, b0);
      case 6:
        return w4_block<1, 6>(a, r, b0);
      case 7:
        return w4_block<1, 7>(a, r, b0);
      case 8:
        return w4_block<1, 8>(a, r, b0);
    }
  }
}

void w4_rows(const Q8Args& a, int64_t n, int64_t r0, int64_t r1) {
  if (n == 1) {  // decode: one weight row per iteration. Measured on weights
    // streamed from DRAM (kernel_bench --rows 151936 --cols 1536 --n 1), one
    // row reads 2x faster than four interleaved rows (10.1 vs 4.8 G MAC/s per
    // core for int4), though four win on L2-resident matrices. The scales
    // are prefetched as far ahead as the codes (paired per-step timing on
    // Zen 5, AVX2 level: int4 matmuls -3-7 %; for 8-bit rows, a sixteenth of
    // their bytes, it gained nothing and lm_head lost 2-5 %).
    const int64_t groups = a.w->groups_per_row();
    const int64_t ahead = util::rows_ahead(kPrefetchBytes, a.w->row_bytes);
    for (int64_t r = r0; r < r1; ++r) {
      util::prefetch_row_scales(a.w->scales, groups, r, ahead);
      w4_block<1, 1>(a, r, 0);
    }
    return;
  }
  // Interleaved 4-bit rows hold a chunk's 8 weight vectors in registers: one
  // row at a time then (the results are the same for any row grouping).
  const bool one_row = a.qi != nullptr;
  const int64_t max_pass = one_row ? kMaxIlPass : kMaxPass;
  over_seq_blocks(
      n, a.w->cols, max_pass,
      [&](int64_t s0, int64_t s1) {
        for (int64_t r = r0; r < r1;) {
          const bool pair = !one_row && r + 2 <= r1;
          over_passes(s0, s1, max_pass, [&](int64_t b0, int64_t nb) {
            if (pair) {
              w4_dispatch<2>(a, r, b0, nb);
            } else {
              w4_dispatch<1>(a, r, b0, nb);
            }
          });
          r += pair ? 2 : 1;
        }
      },
      one_row ? kW4SeqBlockBytes : kernels::kSeqBlockBytes);
}

}  // namespace
}  // namespace qwenqat::engine::avx2

#include "inference/kernels/avx2_q8_w8.h"

namespace qwenqat::engine::avx2 {
namespace {

// y = w . x for rows [r0, r1) (the entry points of avx2_kernels.h).
void q8_matmul_rows_impl(const format::PackedView& w, const Q8Activations& x, const float* eg,
                         float* y, int64_t y_stride, int64_t r0, int64_t r1) {
  const bool il = x.il_chunk == kIlChunk;
  const Q8Args a{&w,
                 x.q.data(),
                 il ? x.qi.data() : nullptr,
                 il ? x.di.data() : nullptr,
                 il ? x.qsumi.data() : nullptr,
                 il ? x.il_chunks : 0,
                 x.d.data(),
                 x.qsum.data(),
                 eg,
                 y,
                 y_stride};
  const int64_t n = x.n;
  if (w.spec.bits == 4) {
    w4_rows(a, n, r0, r1);
  } else {
    w8_rows(a, n, r0, r1);
  }
}

}  // namespace
}  // namespace qwenqat::engine::avx2
