// The int8-activation matmul with AVX-512 VNNI (contract: kernels/act_quant.h
// and avx512_kernels.h): two 32-element blocks per 512-bit vector.
//
// Per pair of blocks (k, k + 1):
//   * 4-bit weights: the 32 packed bytes of the pair are spread to the four
//     128-bit lanes [low nibbles of k, high of k, low of k + 1, high of k + 1]
//     (one vpermq, one masked shift, one and): the unsigned codes u in element
//     order, matching the 64 activation bytes of the pair as they lie in q.
//   * 8-bit weights: v = u - 128 (xor 0x80), vpdpbusd(|v|, q negated where
//     v < 0): exact products v * q (AVX-512 has no vpsignb: a mask and a
//     masked subtract stand in for it).
// vpdpbusd gives 16 int32 lanes, lanes 0-7 of block k and 8-15 of block k + 1,
// each the exact sum of four products; they are converted to float (exact) and
// FMAed with s_k * d_k (lanes 0-7) and s_{k+1} * d_{k+1} (lanes 8-15) into one
// accumulator per (weight row, activation row). The factors s * d are formed
// 16 blocks at a time and spread to the pairs with vpermps. Symmetric 4-bit
// codes have zero point 8: 8 * sum(q) is taken off each exact block sum (the
// per-row dot product of scales and per-group sums it replaced cost as much as
// the products at n >= 2); offsets of asymmetric rows are applied once per row
// as in avx2_q8_impl.h.
//
// With the block-interleaved activations (Q8Activations::qi) each chunk of
// 16 blocks goes another way: the row's codes (256 packed bytes of 4-bit
// rows, 512 bytes of 8-bit ones, the latter first regrouped into 16-byte
// halves of blocks by two vshufi64x2 per 128 bytes) are transposed as 4 x 4
// dwords (unpacklo/hi) into 8 vectors whose lane m holds four codes u of
// block sigma(m), qi holds the activations in the same order, so 8 vpdpbusd
// accumulate the 16 exact block sums in the 16 lanes, sum(q) << il_shift
// comes off (8-bit: the codes u - 128 of the pairs), and one cvt + FMA with
// s * d (permuted to sigma order) does the float part: 8 + 2 vector
// operations per 16 blocks and sequence instead of 8 x 4. A row of blocks
// % 16 != 0 ends in a padded chunk (qi's zero blocks, the codes past the
// row masked off and not read): the 8 blocks past the 17 full chunks of an
// 8960-wide row (down_proj) took the pairs at a few times the cost per block
// (kernel_bench 1536 x 8960 against 1536 x 8704, time per MAC, six
// alternating runs on Zen 5: n = 1 0.95, n = 16 0.93 with the pairs; 0.99
// and 0.96 padded, where the padding's own work predicts 0.97).
// Both prefetch the weights prefetch_bytes(bits, n) ahead (streamed from DRAM the
// interleaved loop ran at half the pairs' rate without it; decode also
// prefetches into L2 four times as far, il_rows_n1; the register tiles
// below fetch the next tile's rows during the current one's passes
// instead, TilePrefetch). For n >= 2 the interleaved chunks run as
// register tiles (il_tile) of kTileR rows x kTileB sequences, the rows
// unpacked once per sequence block: each activation
// vector is loaded once per 4 rows (kernel_bench 1024 x 1536, n = 64, G MAC/s
// per core: w4 57 -> 110 with the zero-point change above; w8 40 -> 83, and
// n = 16 42 -> 81, against the pairs). Wide rows are cut into column
// slices of at most kTileSliceChunks chunks, each unpacked once and passed
// over by all the sequences before the next, so that the scratch stays in
// L1. The tiles carry each chunk's scales in the unpack scratch and reduce
// their 16 sums together (store_tile), with the additions of the one-row
// epilogue. The arguments, scales and unpacking are in avx512_q8_impl.h.
//
// The int32 block sums equal the scalar reference's exactly; the float sums are
// in a different order than the AVX2 kernel's (two interleaved block chains),
// so results differ from it by summation rounding only. The per-pair
// operations do not depend on the batch or the row pairing: a (row, sequence)
// result is the same for any n, r0, r1.
#include <immintrin.h>

#include <algorithm>
#include <memory>
#include <type_traits>

#include "inference/kernels/avx512_kernels.h"
#include "inference/kernels/seq_blocks.h"

#pragma GCC push_options
// GCC 12 reports the undefined pass-through operands inside the AVX-512
// intrinsics (avx512fintrin.h) as (maybe-)uninitialized: a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

#include "inference/kernels/avx2_util.h"
#include "inference/kernels/avx512_q8_impl.h"
#include "inference/kernels/avx512_util.h"

namespace qwenqat::engine::avx512 {
namespace {

constexpr int kMaxPass = 4;    // activation rows per pass
constexpr int kMaxIlPass = 8;  // the same for interleaved rows (one weight row)
constexpr int kTileR = 4;      // weight rows of an interleaved register tile
constexpr int kTileB = 4;      // activation rows of a tile
// Activation bytes per sequence block of the register tiles: the rows are
// unpacked once per block, so small blocks of wide rows repeat the unpack
// (256 x 8960, n = 16 / 64, G MAC/s per core: 128 KB 70 / 73, 256 KB 78 / 80,
// 512 KB 79 / 84; 1536-wide rows unchanged). Half the L2 of the smallest
// AVX-512 CPUs' (1 MB).
constexpr int64_t kTileSeqBlockBytes = 512 << 10;
// Vectors per row and chunk in the register tiles' scratch: the 8 code
// vectors of unpack_chunk16, then the chunk's scales in sigma order (floats).
constexpr int kTileVecs = 9;
// Most chunks per column slice of a register tile (TileSlice): a 4-row
// tile's scratch of an 8960-wide row (down_proj, 18 chunks: 41 KB) and its
// four sequences' activations (35 KB) did not fit in a 48 KB L1 together,
// and every pass re-read the scratch from L2. In slices (18 chunks: three
// of 6, 14 KB + 12 KB) on the Intel Xeon (Emerald Rapids) VM, kernel_bench
// 1536 x 8960 per core, three alternating rounds: w4 n = 16 111-119 ->
// 136-143 G MAC/s, n = 64 131-140 -> 151-159; w8 n = 16 100-115 -> 121-124;
// slices of 3-4 chunks between; batch-16 decode (1.5B shapes) paired per
// step: w4g32 0.963-0.966x time, w8g32 0.976-0.992x (three runs each).
constexpr int64_t kTileSliceChunks = 8;

// The next register tile's rows, prefetched while this tile's passes run:
// the tile loop otherwise starts each unpack_tile with a DRAM miss on the
// codes and one on the scales (perf, batch-16 decode on Zen 5: a third of
// the unpack's samples on those two loads). step() issues the next few
// cache lines of [next, end), spread so that the last pass ends the range.
// Paired per-step timing of batch-16 decode (1.5B shapes, Zen 5, both
// step parities): w4g32 0.96-0.99x time, w8g32 0.91-0.93x; spreading the
// lines over the first half of the passes instead: no difference.
// The codes go to the cache level kHint names (tile_codes_to_l1): on Intel to
// L2 (T1), where the L1 holds the slice's scratch and activations (Emerald
// Rapids VM, paired per step against T0: w4g32 0.978-0.992x time, w8g32
// 0.966-0.977x, five runs each; ending the range at a quarter, half or
// three quarters of the passes was 1.00-1.24x, a quarter or a half later
// 0.96-1.05x); on AMD to L1 (T0; Zen 4 VM, paired against T1: w4g32
// 0.948-0.981x, w8g32 0.996-1.013x, four runs each).
template <int kHint>
struct TilePrefetch {
  uintptr_t next = 0, end = 0;    // codes of the next tile's rows
  uintptr_t snext = 0, send = 0;  // their scales
  int64_t per_step = 0;           // code lines per step (scales: one line per step)
  void step() {
    for (int64_t i = 0; i < per_step && next < end; ++i, next += 64)
      _mm_prefetch(reinterpret_cast<const char*>(next), static_cast<_mm_hint>(kHint));
    if (snext < send) {
      _mm_prefetch(reinterpret_cast<const char*>(snext), _MM_HINT_T0);
      snext += 64;
    }
  }
};

// The interleaved chunks of weight rows [r, r + R) against activation
// rows [b0, b0 + B) as a register tile: per chunk the R rows are unpacked
// once into an L1 scratch, then each activation vector is loaded once for R
// rows and each weight vector once for B sequences (il_chunk loads both for
// every product, from L2 when the activations outgrow L1). acc[i][b] gets
// exactly il_chunk's float operations (same exact int32 sums, same
// fma(float(isum), s * d, acc) per chunk in chunk order), so the results are
// the same bits as il_chunk's.
// Over the chunks [c0, c1) of a column slice (TileSlice), acc carried in.
// wu: the rows' codes and scales of the slice by unpack_tile, [R][c1 - c0][kTileVecs].
template <int R, int B, class Prefetch>
__attribute__((always_inline)) inline void il_tile(const Q8Args& a, int64_t b0, const __m512i* wu,
                                                   int64_t c0, int64_t c1, __m512 (&acc)[R][B],
                                                   Prefetch* tp) {
  const int64_t chunk_bytes = 16 * 32, row_bytes = a.il_chunks * chunk_bytes, sc = c1 - c0;
  for (int64_t c = c0; c < c1; ++c) {
    const int64_t k0 = c * kChunk;
    __m512i isum[R][B];
    for (int b = 0; b < B; ++b) {
      const __m512i start = chunk_start(a, b0 + b, k0);
      for (int i = 0; i < R; ++i) isum[i][b] = start;
    }
    const int8_t* qi = a.qi + b0 * row_bytes + c * chunk_bytes;
    tp->step();
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) {
      __m512i qv[B];
      for (int b = 0; b < B; ++b) qv[b] = _mm512_loadu_si512(qi + b * row_bytes + 64 * t);
      for (int i = 0; i < R; ++i) {
        const __m512i wv = _mm512_load_si512(wu + (i * sc + c - c0) * kTileVecs + t);
        for (int b = 0; b < B; ++b) isum[i][b] = _mm512_dpbusd_epi32(isum[i][b], wv, qv[b]);
      }
    }
    __m512 d[B];
    for (int b = 0; b < B; ++b) d[b] = chunk_d(a, b0 + b, k0);
    for (int i = 0; i < R; ++i) {
      const __m512 s =
          _mm512_load_ps(reinterpret_cast<const float*>(wu + (i * sc + c - c0) * kTileVecs + 8));
      for (int b = 0; b < B; ++b) acc[i][b] = chunk_fma(isum[i][b], s, d[b], acc[i][b]);
    }
  }
}

// The pairs of blocks [k0, blocks) of weight rows [r, r + R) against
// activation rows [b0, b0 + B) (every block, without a.qi): acc[k / 2 % 2][i][b] += the pair's
// products, two FMA chains.
template <int kBits, int R, int B>
__attribute__((always_inline)) inline void pair_sums(const Q8Args& a, int64_t r, int64_t b0,
                                                     int64_t k0, __m512 (&acc)[2][R][B]) {
  const format::PackedView& w = *a.w;
  const int64_t cols = w.cols, blocks = a.blocks;
  const int8_t* q = a.q + b0 * cols;
  const float* d = a.d + b0 * blocks;
  for (; k0 < blocks; k0 += kChunk) {
    const int count = static_cast<int>(blocks - k0 < kChunk ? blocks - k0 : kChunk);
    for (int i = 0; i < R; ++i)  // the chunk's 4 (8) cache lines, a.pf bytes ahead
      prefetch_chunk<kBits>(w.data + (r + i) * w.row_bytes, k0, a.pf);
    const __mmask16 m = static_cast<__mmask16>((1u << count) - 1);
    // s_k * d_k for the chunk's blocks, kept in L1 rather than in registers
    // (the pair loop reads them through vpermps's memory operand).
    alignas(64) float sd[R][B][kChunk];
    for (int i = 0; i < R; ++i) {
      const __m512 s = block_scales(a, r + i, k0, count);
      for (int b = 0; b < B; ++b)
        _mm512_store_ps(sd[i][b], _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, d + b * blocks + k0)));
    }
#pragma GCC unroll 8
    for (int j = 0; j < kChunk / 2; ++j) {
      if (2 * j >= count) break;
      const int64_t k = k0 + 2 * j;
      __m512i wv[R];
      __mmask64 neg[R];
      for (int i = 0; i < R; ++i) {
        const uint8_t* row = w.data + (r + i) * w.row_bytes;
        if constexpr (kBits == 4) {
          wv[i] = unpack_q4_pair(row, k);
        } else {
          const __m512i u = _mm512_loadu_si512(row + k * 32);
          const __m512i v = _mm512_xor_si512(u, _mm512_set1_epi8(static_cast<char>(0x80)));
          neg[i] = _mm512_movepi8_mask(v);
          wv[i] = _mm512_abs_epi8(v);
        }
      }
      for (int b = 0; b < B; ++b) {
        const __m512i qv = _mm512_loadu_si512(q + b * cols + k * 32);
        __m512i zq = _mm512_setzero_si512();  // lanes 0 and 8: 8 * sum(q) of blocks k, k + 1
        if (kBits == 4 && a.zero8) {
          const int32_t* qs = a.qsum + (b0 + b) * blocks + k;
          zq = _mm512_maskz_set1_epi32(0x0001, 8 * qs[0]) |
               _mm512_maskz_set1_epi32(0x0100, 8 * qs[1]);
        }
        for (int i = 0; i < R; ++i) {
          __m512i p;
          if constexpr (kBits == 4) {
            p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], qv);
            if (a.zero8) p = _mm512_sub_epi32(p, zq);
          } else {
            const __m512i qs = _mm512_mask_sub_epi8(qv, neg[i], _mm512_setzero_si512(), qv);
            p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], qs);
          }
          __m512& ac = acc[j & 1][i][b];
          ac = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), pair_lanes(_mm512_load_ps(sd[i][b]), j), ac);
        }
      }
    }
  }
}

// y[b][r] = the lane sum of t plus the per-group correction (Q8Args::cs,
// offsets), as in avx2_q8_impl.h.
inline void store_result(const Q8Args& a, int64_t r, int64_t b, __m512 t) {
  const format::PackedView& w = *a.w;
  const int64_t p = r * a.groups;
  const float* eg = a.eg + b * a.groups;
  float corr = a.cs != 0.0f ? a.cs * util::dot_fp16(w.scales + p, eg, a.groups) : 0.0f;
  if (w.offsets) corr += util::dot_fp16(w.offsets + p, eg, a.groups);
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps(t, 1));
  a.y[b * a.y_stride + r] = util::hsum(h) + corr;
}

// Weight rows [r, r + R) against activation rows [b0, b0 + B): with a.qi
// the interleaved chunks (the last one padded) one row at a time, else the
// pairs in two FMA chains (even + odd); then the epilogue.
template <int kBits, int R, int B>
void q8_block(const Q8Args& a, int64_t r, int64_t b0) {
  __m512 acc[2][R][B];
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < R; ++i)
      for (int b = 0; b < B; ++b) acc[h][i][b] = _mm512_setzero_ps();
  if (a.qi) {
    for (int64_t k0 = 0; k0 < a.blocks; k0 += kChunk)
      for (int i = 0; i < R; ++i) il_chunk<kBits, B>(a, r + i, b0, k0, acc[0][i]);
  } else {
    pair_sums<kBits, R, B>(a, r, b0, 0, acc);
  }
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b)
      store_result(a, r + i, b0 + b,
                   a.qi ? acc[0][i][b] : _mm512_add_ps(acc[0][i][b], acc[1][i][b]));
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
  if constexpr (R == 1) {  // interleaved rows: passes of up to kMaxIlPass
    switch (nb) {
      case 5:
        return q8_block<kBits, 1, 5>(a, r, b0);
      case 6:
        return q8_block<kBits, 1, 6>(a, r, b0);
      case 7:
        return q8_block<kBits, 1, 7>(a, r, b0);
      case 8:
        return q8_block<kBits, 1, 8>(a, r, b0);
    }
  }
}

// y[b0 + b][r + i] = the lane sum of acc[i][b] for a tile of 4 rows, with
// the additions of q8_block's epilogue (util::hsum of the two 256-bit halves'
// sum) in the same order, so the same bits; the 16 sums are formed together:
// the halves (8 lanes), quarters (4) and pairs of lanes of four vectors at
// once. v[4i + b] = acc[i][b] (zero for b >= B); out lane 4b + i = sum(v[4i + b]).
template <int R, int B>
void store_tile(const Q8Args& a, int64_t r, int64_t b0, const __m512 (&acc)[R][B]) {
  static_assert(R == 4 && B <= 4, "store_tile reduces 4 x 4 accumulators");
  __m512 v[16];
  for (int i = 0; i < 4; ++i)
    for (int b = 0; b < 4; ++b) v[4 * i + b] = b < B ? acc[i][b] : _mm512_setzero_ps();
  const __m512 out = sum16x16(v);
  // Lane 4k + j = sum(v[4j + k]) = acc[j][k]: 128-bit lane b = rows r..r+3 of sequence b0 + b.
  alignas(64) float o[16];
  _mm512_store_ps(o, out);
  for (int b = 0; b < B; ++b)
    _mm_storeu_ps(a.y + (b0 + b) * a.y_stride + r, _mm_load_ps(o + 4 * b));
}

// The column slices of a register tile's rows: the chunks [c0, c1) whose
// codes are unpacked together into the scratch and passed over by all the
// sequence passes before the next slice; the tile's accumulators are carried
// between slices in `carry` (kTileR x kTileB vectors per pass). The chunks
// are summed in the same order whatever the slicing, so the same bits.
struct TileSlice {
  int64_t c0 = 0, c1 = 0;
  __m512* carry = nullptr;  // this pass's accumulators (with more than one slice)
};

// Interleaved rows [r, r + R) against activation rows [b0, b0 + B): the
// chunks of slice sl as a register tile, then, after the last slice,
// q8_block's epilogue on the chunks' sums, so the same bits.
template <int R, int B, class Prefetch>
void tile_block(const Q8Args& a, int64_t r, int64_t b0, const __m512i* wu, const TileSlice& sl,
                Prefetch* tp) {
  __m512 acc[R][B];
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b)
      acc[i][b] = sl.c0 == 0 ? _mm512_setzero_ps() : sl.carry[i * kTileB + b];
  il_tile<R, B>(a, b0, wu, sl.c0, sl.c1, acc, tp);
  if (sl.c1 < a.il_chunks) {
    for (int i = 0; i < R; ++i)
      for (int b = 0; b < B; ++b) sl.carry[i * kTileB + b] = acc[i][b];
    return;
  }
  if (a.tile_only) return store_tile<R, B>(a, r, b0, acc);
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) store_result(a, r + i, b0 + b, acc[i][b]);
}

template <int B = kTileB, class Prefetch>
void tile_dispatch(const Q8Args& a, int64_t r, int64_t b0, int64_t nb, const __m512i* wu,
                   const TileSlice& sl, Prefetch* tp) {
  if (nb == B) return tile_block<kTileR, B>(a, r, b0, wu, sl, tp);
  if constexpr (B > 1) tile_dispatch<B - 1>(a, r, b0, nb, wu, sl, tp);
}

// The interleaved chunks [c0, c1) of rows [r, r + kTileR) (the last chunk
// of a row padded), unpacked once for all the passes over them, with their
// scales: wu [kTileR][c1 - c0][kTileVecs].
// No prefetch of its own: the previous tile's passes fetched these rows
// (TilePrefetch). Paired per step, batch-16 decode on the Emerald Rapids
// VM, without a prefetch a.pf ahead here against with it: w4g32 0.955-0.972x
// time, w8g32 0.950-0.991x (three runs each); prefetching only the first
// tile of a call's rows (which no TilePrefetch covers) against never:
// 0.99-1.02x.
template <int kBits>
void unpack_tile(const Q8Args& a, int64_t r, int64_t c0, int64_t c1, __m512i* wu) {
  const __m512i sigma = sigma_index();
  for (int i = 0; i < kTileR; ++i)
    for (int64_t c = c0; c < c1; ++c) {
      __m512i* v = wu + (i * (c1 - c0) + c - c0) * kTileVecs;
      const int count = chunk_count(a, c * kChunk);
      const uint8_t* row = a.w->data + (r + i) * a.w->row_bytes;
      unpack_chunk16<kBits>(row, c * kChunk, v, count);
      const __m512 s = _mm512_permutexvar_ps(sigma, block_scales(a, r + i, c * kChunk, count));
      _mm512_store_ps(reinterpret_cast<float*>(v + 8), s);
    }
}

// Decode (n = 1) with interleaved activations: rows [r0, r1) one after
// another, each chunk's integer start (chunk_start, the same for every row)
// formed once per call. Per row exactly q8_block<kBits, 1, 1>'s operations
// (il_chunk's four dpbusd chains, the padded last chunk's as its masked
// unpack, the epilogue), so the same bits, with less work per row around
// them: decode of random 1.5B-shape
// weights on Zen 5, time per matmul paired step by step against q8_block in
// one process (docs/PERFORMANCE.md): int4 -6-8 %, int8 -3-4 %. Two rows at
// a time were 10-14 % slower than one.
constexpr int64_t kMaxN1Chunks = 64;  // cols <= 32768; wider rows take q8_block
template <int kBits>
void il_rows_n1(const Q8Args& a, int64_t r0, int64_t r1) {
  const format::PackedView& w = *a.w;
  // Full chunks in the loop; a padded last one after it (count < kChunk).
  const int64_t chunks = a.blocks / kChunk, k_tail = chunks * kChunk;
  const int tail = static_cast<int>(a.blocks - k_tail);
  alignas(64) __m512i start[kMaxN1Chunks];
  for (int64_t c = 0; c < a.il_chunks; ++c) start[c] = chunk_start(a, 0, c * kChunk);
  const __m512i sigma = sigma_index();
  // The scales are a second stream (a ninth of a 4-bit g32 row's bytes),
  // prefetched as far ahead as the codes (paired per-step timing on Zen 5:
  // int4 matmuls another -4-9 %, int8 -1-5 %).
  const int64_t ahead = util::rows_ahead(a.pf, w.row_bytes);
  // The codes are prefetched twice: into L1 a.pf bytes ahead and into L2
  // four times as far (kernels::prefetch_l1_l2), so more lines are in flight
  // when the memory's latency rises. Paired per-step timing of decode on
  // Zen 5 (1.5B shapes, 96-128 steps a run, over an hour of the VM's moods)
  // against one T0 prefetch a.pf ahead: w4g32 median 0.95x time (37 runs,
  // 0.90-1.13, the three above 1.05 in its slowest minutes), w8g32 median
  // 0.92x (20 runs, 0.89-1.03); A/A runs of the same harness 0.99-1.01.
  const int64_t near = a.pf, far = 4 * a.pf;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w.data + r * w.row_bytes;
    util::prefetch_row_scales(w.scales, a.groups, r, ahead);
    __m512 acc = _mm512_setzero_ps();
    // il_chunk's four chains (B = 1) over the chunk's [8][64] activation bytes
    const auto chunk = [&](int64_t c, int count) {
      __m512i wv[8];
      kernels::prefetch_l1_l2<kBits>(row + c * kChunk * 4 * kBits, near, far);
      unpack_chunk16<kBits>(row, c * kChunk, wv, count);
      const __m512 s = _mm512_permutexvar_ps(sigma, block_scales(a, r, c * kChunk, count));
      const __m512i isum = chained_isum<4>(_mm512_load_si512(start + c), wv, a.qi + c * 512);
      acc = chunk_fma(isum, s, _mm512_loadu_ps(a.di + c * kChunk), acc);
    };
    for (int64_t c = 0; c < chunks; ++c) chunk(c, kChunk);
    if (tail > 0) chunk(chunks, tail);
    store_result(a, r, 0, acc);
  }
}

// The prefetch of rows [r, min(r + kTileR, r1)) over `steps` chunk steps.
template <class Prefetch>
inline Prefetch next_tile_prefetch(const Q8Args& a, int64_t r, int64_t r1, int64_t steps) {
  Prefetch tp;
  const int64_t rows = std::min<int64_t>(kTileR, r1 - r);
  if (rows <= 0 || steps <= 0) return tp;
  const format::PackedView& w = *a.w;
  const auto at = [](const void* p) { return reinterpret_cast<uintptr_t>(p); };
  tp.next = at(w.data + r * w.row_bytes) & ~uintptr_t{63};
  tp.end = at(w.data + (r + rows) * w.row_bytes);
  tp.snext = at(w.scales + r * a.groups) & ~uintptr_t{63};
  tp.send = at(w.scales + (r + rows) * a.groups);
  tp.per_step = (static_cast<int64_t>(tp.end - tp.next) / 64 + steps - 1) / steps;
  return tp;
}

template <int kBits>
void q8_rows(const Q8Args& a, int64_t n, int64_t r0, int64_t r1) {
  if (n == 1) {  // decode: one weight row per iteration, one sequential stream
    if (a.qi != nullptr && a.il_chunks <= kMaxN1Chunks) return il_rows_n1<kBits>(a, r0, r1);
    for (int64_t r = r0; r < r1; ++r) q8_block<kBits, 1, 1>(a, r, 0);
    return;
  }
  // Interleaved rows: register tiles of kTileR rows x kTileB sequences (the
  // rows unpacked once per sequence block), the rows left over one at a time
  // against up to kMaxIlPass sequences; the same bits either way.
  if (a.qi != nullptr) {
    // (not zeroed: unpack_tile writes all of it; paired per step, batch-16
    // decode: 0.983-0.999x time against a zeroed std::vector; a vector of
    // __m512i would drop the type's 64-byte alignment)
    struct alignas(64) Zmm {
      int8_t bytes[64];
    };
    const int64_t slices = (a.il_chunks + kTileSliceChunks - 1) / kTileSliceChunks;
    const int64_t slice_chunks = (a.il_chunks + slices - 1) / slices;
    // The accumulators carried between slices: kTileR x kTileB per pass of
    // the largest sequence block.
    const int64_t block =
        std::min(n, kernels::seq_block_size(a.w->cols, kTileB, kTileSeqBlockBytes));
    const int64_t max_passes = slices > 1 ? (block + kTileB - 1) / kTileB : 0;
    const auto buf = std::make_unique_for_overwrite<Zmm[]>(
        static_cast<size_t>(kTileR * slice_chunks * kTileVecs + max_passes * kTileR * kTileB));
    __m512i* wu = reinterpret_cast<__m512i*>(buf.get());
    __m512* carry =
        slices > 1 ? reinterpret_cast<__m512*>(wu + kTileR * slice_chunks * kTileVecs) : nullptr;
    kernels::over_seq_blocks(
        n, a.w->cols, kTileB,
        [&](int64_t s0, int64_t s1) {
          int64_t r = r0;
          const int64_t steps = (s1 - s0 + kTileB - 1) / kTileB * a.il_chunks;
          const auto tiles = [&]<class Prefetch>(std::type_identity<Prefetch>) {
            for (; r + kTileR <= r1; r += kTileR) {
              Prefetch tp = next_tile_prefetch<Prefetch>(a, r + kTileR, r1, steps);
              for (int64_t k = 0; k < slices; ++k) {
                TileSlice sl{a.il_chunks * k / slices, a.il_chunks * (k + 1) / slices, carry};
                unpack_tile<kBits>(a, r, sl.c0, sl.c1, wu);
                kernels::over_passes(s0, s1, kTileB, [&](int64_t b0, int64_t nb) {
                  tile_dispatch(a, r, b0, nb, wu, sl, &tp);
                  if (sl.carry) sl.carry += kTileR * kTileB;
                });
              }
            }
          };
          if (tile_codes_to_l1()) {
            tiles(std::type_identity<TilePrefetch<_MM_HINT_T0>>{});
          } else {
            tiles(std::type_identity<TilePrefetch<_MM_HINT_T1>>{});
          }
          for (; r < r1; ++r)
            kernels::over_passes(s0, s1, kMaxIlPass, [&](int64_t b0, int64_t nb) {
              q8_dispatch<kBits, 1>(a, r, b0, nb);
            });
        },
        kTileSeqBlockBytes);
    return;
  }
  // Without a.qi: pairs of rows, kMaxPass sequences.
  kernels::over_seq_blocks(n, a.w->cols, kMaxPass, [&](int64_t s0, int64_t s1) {
    for (int64_t r = r0; r < r1;) {
      const bool pair = r + 2 <= r1;
      kernels::over_passes(s0, s1, kMaxPass, [&](int64_t b0, int64_t nb) {
        if (pair) {
          q8_dispatch<kBits, 2>(a, r, b0, nb);
        } else {
          q8_dispatch<kBits, 1>(a, r, b0, nb);
        }
      });
      r += pair ? 2 : 1;
    }
  });
}

}  // namespace

bool supports_q8(const format::PackedView& w) {
  return (w.spec.bits == 4 || w.spec.bits == 8) && w.cols % 64 == 0 &&
         w.spec.group_len(w.cols) % 32 == 0;
}

void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, const float* eg, float* y,
                    int64_t y_stride, int64_t r0, int64_t r1) {
  const bool il = x.il_chunk == kChunk;
  const int64_t n = x.n;
  Q8Args a{};
  a.w = &w;
  a.q = x.q.data();
  a.qi = il ? x.qi.data() : nullptr;
  a.di = il ? x.di.data() : nullptr;
  a.qsumi = il ? x.qsumi.data() : nullptr;
  a.il_chunks = il ? x.il_chunks : 0;
  a.d = x.d.data();
  a.qsum = x.qsum.data();
  a.eg = eg;
  a.y = y;
  a.y_stride = y_stride;
  a.group_of_block = _mm512_setzero_si512();
  a.zero8 = w.spec.bits == 4 && w.spec.symmetric;
  a.il_shift = w.spec.bits == 8 ? 7 : a.zero8 ? 3 : 0;
  a.pf = prefetch_bytes(w.spec.bits, n);
  a.blocks = w.cols / 32;
  a.groups = w.groups_per_row();
  a.bpg = a.blocks / a.groups;
  if (kChunk % a.bpg == 0) {
    a.group_of_block = _mm512_srlv_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(__builtin_ctzll(static_cast<unsigned long long>(a.bpg))));
  }
  const int c = w.spec.bits == 4 ? (a.zero8 ? 8 : 0) : 128;
  a.cs = static_cast<float>(c - (w.spec.symmetric ? w.spec.zero_code() : 0));
  a.tile_only = w.offsets == nullptr && a.cs == 0.0f;
  if (w.spec.bits == 4) {
    q8_rows<4>(a, n, r0, r1);
  } else {
    q8_rows<8>(a, n, r0, r1);
  }
}

void interleave_q8_rows(Q8Activations* x, int64_t b0, int64_t b1) {
  const int64_t chunks = x->il_chunks, blocks = x->blocks;
  const __m512i sigma = sigma_index();
  for (int64_t b = b0; b < b1; ++b) {
    const auto* row = reinterpret_cast<const uint8_t*>(x->q.data() + b * x->cols);
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t k0 = c * kChunk, at = (b * chunks + c) * kChunk, from = b * blocks + k0;
      const int count = static_cast<int>(std::min<int64_t>(blocks - k0, kChunk));
      __m512i v[8];
      unpack_q8_chunk16(row, k0, v, count);
      int8_t* dst = x->qi.data() + at * kQ8Block;
      for (int t = 0; t < 8; ++t) _mm512_storeu_si512(dst + 64 * t, v[t]);
      const __mmask16 m = static_cast<__mmask16>((1u << count) - 1);
      _mm512_storeu_ps(x->di.data() + at,
                       _mm512_permutexvar_ps(sigma, _mm512_maskz_loadu_ps(m, x->d.data() + from)));
      _mm512_storeu_si512(
          x->qsumi.data() + at,
          _mm512_permutexvar_epi32(sigma, _mm512_maskz_loadu_epi32(m, x->qsum.data() + from)));
    }
  }
}

}  // namespace qwenqat::engine::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
