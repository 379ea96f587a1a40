// Internal to avx512_q8.cpp (contract there and in act_quant.h): the
// AVX-512 VNNI int8 kernel's arguments, scales, the unpacking of 4- and 8-bit
// rows into pairs and 16-block interleaved chunks, and the one-row chunk
// product il_chunk. Include it only inside that file's #pragma GCC target
// region (its inline functions use AVX-512 intrinsics).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "inference/kernels/act_quant.h"
#include "inference/kernels/avx2_util.h"

namespace qwenqat::engine::avx512 {
namespace {

namespace util = avx2::util;

constexpr int kChunk = 16;  // blocks per interleaved chunk (Q8Activations::il_chunk)
inline bool cpu_is_amd() {
  static const bool amd = __builtin_cpu_is("amd");
  return amd;
}
// Software prefetch distance on a row, by CPU vendor. DRAM-streamed rows
// (kernel_bench --rows 1000000 --n 1, Intel Xeon, three alternating runs): 2 KB
// vs 4 KB +5 % (4-bit) and +10 % (8-bit), 1 KB within noise of 2 KB; AMD Zen 5
// (--rows 151936, three alternating runs): 4 KB vs 2 KB +0-28 % (4-bit) and
// +7-14 % (8-bit), 1 KB -10-30 %, 8 KB between; decode w8g32 +4-10 %.
// Decode (n = 1) of 4-bit rows on AMD takes 3 KB (paired per step, w4g32
// decode on Zen 5, twelve runs: 3 KB vs 4 KB 0.966-1.002x time, mean 0.984;
// 2 KB and 2.5 KB 0.99-1.02x, 6 KB 1.005x; 8-bit rows at 3 KB 1.04-1.06x,
// at 6 KB 1.00-1.02x; on a Zen 4 VM 8-bit rows at 6 KB 0.97-0.99x, 4-bit
// rows at 2 KB 0.94-1.04x: kept, docs/performance/2026-12-07-zen4.md).
int prefetch_bytes(int bits, int64_t n) {
  if (!cpu_is_amd()) return 2048;
  return bits == 4 && n == 1 ? 3072 : 4096;
}
// Whether the register tiles fetch the next tile's codes into L1 (AMD) or
// L2 (Intel): TilePrefetch in avx512_q8.cpp has the measurements.
inline bool tile_codes_to_l1() { return cpu_is_amd(); }

struct Q8Args {
  const format::PackedView* w;
  const int8_t* q;  // [n, cols]
  // With qi every row is il_chunks chunks of 16 blocks, the last one padded
  // with zero blocks where blocks % 16 != 0 (Q8Activations::il_chunks).
  const int8_t* qi;      // [n, il_chunks * 512] block-interleaved q, or nullptr
  const float* di;       // [n, il_chunks * 16] d in the same order (with qi)
  const int32_t* qsumi;  // [n, il_chunks * 16] sum(q) per block in qi's order (with qi)
  int64_t il_chunks;     // with qi: ceil(blocks / 16)
  const float* d;        // [n, blocks]
  const int32_t* qsum;   // [n, blocks] sum(q) per block
  const float* eg;       // [n, groups] per-group sums of d * sum(q)
  float* y;
  int64_t y_stride;
  int64_t blocks, groups, bpg;  // blocks per row, groups per row, blocks per group
  __m512i group_of_block;       // lane j -> j / bpg (when 16 % bpg == 0)
  // Symmetric 4-bit rows: the block sums of (u - 8) * q are formed exactly as
  // sum(u * q) - 8 * sum(q) per block (no zero-point term per group after).
  bool zero8;
  // The interleaved chunks' block sums are sum(u * q) - (sum(q) << il_shift):
  // 3 for symmetric 4-bit rows (as zero8), 7 for 8-bit rows (u - 128, the
  // codes of the pairs too), 0 for none (asymmetric 4-bit rows).
  int il_shift;
  int pf;  // prefetch_bytes(bits, n)
  // The codes used are u - c (c = 8 for symmetric 4-bit rows, 0 for
  // asymmetric ones, 128 for 8 bits); the weight is (u - zero) * s (+ o), so
  // each result takes cs = c - zero times the per-group dot of s and e (only
  // 8-bit asymmetric rows have cs != 0), plus that of o and e (store_result).
  float cs;
  // No per-group correction (cs == 0, no offsets): a register tile's lane
  // sums are its results (store_tile).
  bool tile_only;
};

// An interleaved chunk at block k0 for activation row b, shared by il_chunk
// and il_tile so both give the same bits. The int32 block sums (lane m =
// block k0 + sigma(m)) start at chunk_start, -(sum(q) << il_shift) (exact,
// one vector per sequence for all the rows of a tile), and take the dpbusd
// products of u * q; chunk_fma converts them and FMAs with s * d into acc
// (s = the row's scales in sigma order, d = chunk_d).
inline int64_t chunk_at(const Q8Args& a, int64_t b, int64_t k0) {
  return b * a.il_chunks * kChunk + k0;  // in di / qsumi
}
// The blocks of the row in the chunk at k0: kChunk, or fewer in a padded
// last chunk.
inline int chunk_count(const Q8Args& a, int64_t k0) {
  return static_cast<int>(a.blocks - k0 < kChunk ? a.blocks - k0 : kChunk);
}
inline __m512i chunk_start(const Q8Args& a, int64_t b, int64_t k0) {
  if (a.il_shift == 0) return _mm512_setzero_si512();
  const __m512i qs = _mm512_loadu_si512(a.qsumi + chunk_at(a, b, k0));
  return _mm512_sub_epi32(_mm512_setzero_si512(),
                          _mm512_sll_epi32(qs, _mm_cvtsi32_si128(a.il_shift)));
}
inline __m512 chunk_d(const Q8Args& a, int64_t b, int64_t k0) {
  return _mm512_loadu_ps(a.di + chunk_at(a, b, k0));
}
inline __m512 chunk_fma(__m512i isum, __m512 s, __m512 d, __m512 acc) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(s, d), acc);
}

// The 16 weight scales of blocks [k0, k0 + count) of row r as floats (lanes
// past count: anything finite). count is even, k0 a multiple of kChunk.
__attribute__((always_inline)) inline __m512 block_scales(const Q8Args& a, int64_t r, int64_t k0,
                                                          int count) {
  const uint16_t* s = a.w->scales + r * a.groups;
  if (a.bpg == 1) {
    const __mmask16 m = static_cast<__mmask16>((1u << count) - 1);
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + k0));
  }
  if (a.bpg % kChunk == 0) return _mm512_set1_ps(util::h2f(s[k0 / a.bpg]));
  if (kChunk % a.bpg == 0) {
    const int ng = static_cast<int>((count + a.bpg - 1) / a.bpg);
    const __mmask16 m = static_cast<__mmask16>((1u << ng) - 1);
    const __m512 g = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, s + k0 / a.bpg));
    return _mm512_permutexvar_ps(a.group_of_block, g);
  }
  alignas(64) float f[kChunk] = {};
  for (int j = 0; j < count; ++j) f[j] = util::h2f(s[(k0 + j) / a.bpg]);
  return _mm512_load_ps(f);
}

// Lanes 0-7 = lane 2j of v, lanes 8-15 = lane 2j + 1.
inline __m512 pair_lanes(__m512 v, int j) {
  const __m512i idx =
      _mm512_set_epi32(2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1,
                       2 * j + 1, 2 * j, 2 * j, 2 * j, 2 * j, 2 * j, 2 * j, 2 * j, 2 * j);
  return _mm512_permutexvar_ps(idx, v);
}

// The 64 codes of blocks (k, k + 1) of a 4-bit row as unsigned bytes in
// element order.
inline __m512i unpack_q4_pair(const uint8_t* row, int64_t k) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + k * 16));
  // qwords [0 1 0 1 2 3 2 3]: 128-bit lanes [k, k, k+1, k+1].
  const __m512i t =
      _mm512_permutexvar_epi64(_mm512_set_epi64(3, 2, 3, 2, 1, 0, 1, 0), _mm512_castsi256_si512(v));
  const __m512i h = _mm512_mask_srli_epi64(t, 0xcc, t, 4);  // lanes 1, 3: high nibbles
  return _mm512_and_si512(h, _mm512_set1_epi8(0x0f));
}

// Lane m of a 16-block interleaved vector holds block sigma(m) of the chunk,
// sigma(m) = 4 * (m % 4) + m / 4 (the order a 4 x 4 dword transpose gives).
inline __m512i sigma_index() {
  return _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
}

// The codes of blocks [k0, k0 + 16) of a 4-bit row, interleaved: w[t] lane m
// = the codes of elements 4t..4t+3 of block k0 + sigma(m) (four bytes), the
// layout of Q8Activations::qi (act_quant.h).
// The 4 x 4 dword transpose within each 128-bit lane L: in[i] lane L holds
// dwords 0-3 of block 4i + L, out[t] lane 4L + j = dword t of block 4j + L,
// i.e. lane m holds block sigma(m).
inline void transpose_dwords(const __m512i in[4], __m512i out[4]) {
  const __m512i t0 = _mm512_unpacklo_epi32(in[0], in[1]), t1 = _mm512_unpackhi_epi32(in[0], in[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(in[2], in[3]), t3 = _mm512_unpackhi_epi32(in[2], in[3]);
  out[0] = _mm512_unpacklo_epi64(t0, t2);
  out[1] = _mm512_unpackhi_epi64(t0, t2);
  out[2] = _mm512_unpacklo_epi64(t1, t3);
  out[3] = _mm512_unpackhi_epi64(t1, t3);
}

// 64 bytes at p, the first `bytes` of them (0 past those: no access there);
// a plain load for bytes >= 64 (full chunks: a constant after inlining).
inline __m512i load_first(const uint8_t* p, int64_t bytes) {
  if (bytes >= 64) return _mm512_loadu_si512(p);
  const __mmask64 m = bytes <= 0 ? 0 : (__mmask64{1} << bytes) - 1;
  return _mm512_maskz_loadu_epi8(m, p);
}

// count < kChunk: a padded last chunk, its missing blocks' codes 0 (not read).
inline void unpack_q4_chunk16(const uint8_t* row, int64_t k0, __m512i w[8], int count = kChunk) {
  const uint8_t* p = row + k0 * 16;  // 16 blocks x 16 bytes
  __m512i in[4];
  for (int i = 0; i < 4; ++i) in[i] = load_first(p + 64 * i, count * 16 - 64 * i);
  __m512i v[4];
  transpose_dwords(in, v);
  const __m512i mask = _mm512_set1_epi8(0x0f);
  for (int t = 0; t < 4; ++t) {
    w[t] = _mm512_and_si512(v[t], mask);                            // elements 4t..
    w[t + 4] = _mm512_and_si512(_mm512_srli_epi32(v[t], 4), mask);  // 16 + 4t..
  }
}

// The same for the codes of an 8-bit row (32 bytes per block): 128-bit lane L
// of lo[i] / hi[i] = bytes 0-15 / 16-31 of block 4i + L (two shuffles of the
// pair loads), then the 4 x 4 dword transpose above on each.
inline void unpack_q8_chunk16(const uint8_t* row, int64_t k0, __m512i w[8], int count = kChunk) {
  const uint8_t* p = row + k0 * 32;  // 16 blocks x 32 bytes
  __m512i lo[4], hi[4];
  const int64_t bytes = count * 32;
  for (int i = 0; i < 4; ++i) {
    const uint8_t* pa = p + 128 * i;
    const __m512i a = load_first(pa, bytes - 128 * i),
                  b = load_first(pa + 64, bytes - 128 * i - 64);
    lo[i] = _mm512_shuffle_i64x2(a, b, 0x88);  // 128-bit lanes a0 a2 b0 b2
    hi[i] = _mm512_shuffle_i64x2(a, b, 0xdd);  // a1 a3 b1 b3
  }
  transpose_dwords(lo, w);
  transpose_dwords(hi, w + 4);
}

template <int kBits>
inline void unpack_chunk16(const uint8_t* row, int64_t k0, __m512i w[8], int count = kChunk) {
  if constexpr (kBits == 4) {
    unpack_q4_chunk16(row, k0, w, count);
  } else {
    unpack_q8_chunk16(row, k0, w, count);
  }
}

// Prefetches into L1 the kBits cache lines of a row's chunk at block k0 (16
// blocks of 32 codes), `ahead` bytes further on.
template <int kBits>
inline void prefetch_chunk(const uint8_t* row, int64_t k0, int64_t ahead) {
  kernels::prefetch_lines<kBits>(row + k0 * 4 * kBits, ahead);
}
// start + the 8 dpbusd products of a chunk's code vectors w and its 512
// interleaved activation bytes qi, in kChains chains (exact int32 sums; the
// chaining only changes the latency).
template <int kChains>
inline __m512i chained_isum(__m512i start, const __m512i w[8], const int8_t* qi) {
  __m512i c[kChains];
  for (int t = 0; t < kChains; ++t) {
    const __m512i from = t == 0 ? start : _mm512_setzero_si512();
    c[t] = _mm512_dpbusd_epi32(from, w[t], _mm512_loadu_si512(qi + 64 * t));
  }
  for (int t = kChains; t < 8; ++t)
    c[t % kChains] = _mm512_dpbusd_epi32(c[t % kChains], w[t], _mm512_loadu_si512(qi + 64 * t));
  __m512i isum = c[0];
  for (int t = 1; t < kChains; ++t) isum = _mm512_add_epi32(isum, c[t]);
  return isum;
}

// Weight row r against activation rows [b0, b0 + B) over the interleaved
// chunk at block k0: acc[b] += float(isum) * s * d, lane m = block
// k0 + sigma(m), isum the exact int32 block sums (four dpbusd chains, added).
// In a padded last chunk the missing blocks' lanes add 0 * (s * 0) (codes,
// activations, sum(q) and d all 0), which leaves acc as it was.
template <int kBits, int B>
inline void il_chunk(const Q8Args& a, int64_t r, int64_t b0, int64_t k0, __m512* acc) {
  __m512i w[8];
  const int count = chunk_count(a, k0);
  const uint8_t* row = a.w->data + r * a.w->row_bytes;
  prefetch_chunk<kBits>(row, k0, a.pf);
  unpack_chunk16<kBits>(row, k0, w, count);
  const __m512i sigma = sigma_index();
  const __m512 s = _mm512_permutexvar_ps(sigma, block_scales(a, r, k0, count));
  const int64_t chunk_bytes = 16 * 32, row_bytes = a.il_chunks * chunk_bytes;
  for (int b = 0; b < B; ++b) {
    const int8_t* qi = a.qi + (b0 + b) * row_bytes + (k0 / kChunk) * chunk_bytes;
    // The exact int32 sums do not depend on how the 8 products are chained:
    // one chain per sequence when several sequences interleave, four alone.
    constexpr int kChains = B >= 4 ? 1 : B >= 2 ? 2 : 4;
    const __m512i isum = chained_isum<kChains>(chunk_start(a, b0 + b, k0), w, qi);
    acc[b] = chunk_fma(isum, s, chunk_d(a, b0 + b, k0), acc[b]);
  }
}

}  // namespace
}  // namespace qwenqat::engine::avx512
