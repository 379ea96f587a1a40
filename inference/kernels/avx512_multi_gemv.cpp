// The multi-vector GEMV of avx2_multi_gemv.cpp with 16 lanes (contract:
// avx512_kernels.h): for batched decode with float activations, n = 2..16.
//
// Each packed 32-element chunk of a weight row is dequantized once into two
// vectors of 16 floats, the reference dequantizer's values float(int(u) -
// zero) * s (+ o): 4-bit codes through a 16-entry table per group (the 16
// possible values, computed with the same float operations, picked with
// vpermps), 8-bit codes converted and scaled. Two weight rows at a time are
// FMAed against up to kMaxPass activation rows (2 x 8 accumulators of 16
// lanes in registers; every activation load feeds both rows). The
// activations of a column block of kKBlockChunks chunks are packed once per
// block as [chunk][row][32] (constant load offsets, 32 KB in L1) and every
// row of the range runs against them; the accumulators persist in scratch
// between blocks, so the blocking does not change the sums. The operations
// of one (weight row, activation row) pair are the same for any batch size,
// pass split or row pairing: a sequence's result does not depend on which
// sequences share its batch or where the row range starts. Float sums in
// another order than the AVX2 form's (16 lanes).
//
// kernel_bench, 2048 x 1536, per core: w4 n = 16 48-51 G MAC/s (AVX2 form
// 27-30), n = 2 25-26 (16); w8 n = 16 41-43 (30).
#include <immintrin.h>

#include <cstring>
#include <utility>

#include "inference/kernels/avx512_kernels.h"

#pragma GCC push_options
// GCC 12 reports the undefined pass-through operands inside the AVX-512
// intrinsics (avx512fintrin.h) as (maybe-)uninitialized: a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")

#include "inference/kernels/avx2_util.h"

namespace qwenqat::engine::avx512 {
namespace {

namespace util = avx2::util;

// Activation rows per pass (2 x kMaxPass accumulators held in registers).
constexpr int kMaxPass = 8;
// Chunks of 32 columns per block: a full pass's packed activations, 8 * 32 *
// 32 floats = 32 KB, stay in L1 (8 and 16 chunks measured 5-15 % slower).
constexpr int64_t kKBlockChunks = 32;
// The packed activations of one block (after the accumulators in scratch;
// any alignment).
constexpr int64_t kPackedFloats = kKBlockChunks * kMaxPass * 32;

// The accumulators in scratch: 16 lanes per (row, sequence of a pass).
int64_t accumulator_floats(int64_t rows, int64_t n) {
  return rows * (n < kMaxPass ? n : kMaxPass) * 16;
}

// The dequantized weights of one group: for 4-bit a table t[u] = float(u -
// zero) * s (+ o) of the 16 codes; for 8-bit s, o and zero as vectors.
template <int kBits>
struct GroupWeights {
  __m512 table, s, o;
  __m512i zero;

  void set(float scale, float offset, bool has_offset, int zero_code) {
    s = _mm512_set1_ps(scale);
    o = _mm512_set1_ps(offset);
    zero = _mm512_set1_epi32(zero_code);
    if constexpr (kBits == 4) {
      const __m512i codes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
      table = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(codes, zero)), s);
      if (has_offset) table = _mm512_add_ps(table, o);
    }
  }

  // Chunk k of row as weights w0 (elements 0-15) and w1 (16-31).
  inline void chunk(const uint8_t* row, int64_t k, bool has_offset, __m512* w0, __m512* w1) const {
    if constexpr (kBits == 4) {  // low nibbles = elements 0-15, high = 16-31
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k * 16));
      const __m128i mask = _mm_set1_epi8(0x0f);
      *w0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_and_si128(v, mask)), table);
      *w1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), mask)),
                                  table);
    } else {
      const auto* p = reinterpret_cast<const __m128i*>(row + k * 32);
      const __m512i c0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(p));
      const __m512i c1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(p + 1));
      *w0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c0, zero)), s);
      *w1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c1, zero)), s);
      if (has_offset) {
        *w0 = _mm512_add_ps(*w0, o);
        *w1 = _mm512_add_ps(*w1, o);
      }
    }
  }
};

// Rows r .. r + R - 1 against B activation rows over chunks [k0, k1): xp
// the activations of those chunks packed as [k1 - k0][B][32] (constant
// offsets for the loads); row i's B accumulators are loaded from acc_mem + i
// * B * 16 (zero when k0 == 0) and stored back. Each activation load feeds R
// rows (R x B <= 16 accumulators in registers).
template <int kBits, int R, int B>
void multi_rows(const format::PackedView& w, const float* xp, int64_t r, int64_t k0, int64_t k1,
                float* acc_mem) {
  const int64_t groups = w.groups_per_row();
  const int64_t cpg = w.spec.group_len(w.cols) / 32;  // chunks per group
  const int zero = w.spec.symmetric ? w.spec.zero_code() : 0;
  const bool has_offset = w.offsets != nullptr;
  const uint8_t* row[R];
  const uint16_t* sc[R];
  const uint16_t* of[R];
  for (int i = 0; i < R; ++i) {
    row[i] = w.data + (r + i) * w.row_bytes;
    sc[i] = w.scales + (r + i) * groups;
    of[i] = has_offset ? w.offsets + (r + i) * groups : nullptr;
  }
  __m512 acc[R][B];
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b)
      acc[i][b] = k0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(acc_mem + (i * B + b) * 16);
  int64_t g = k0 / cpg, in_group = k0 % cpg;
  GroupWeights<kBits> gw[R];
  for (int i = 0; i < R; ++i)
    gw[i].set(util::h2f(sc[i][g]), has_offset ? util::h2f(of[i][g]) : 0.0f, has_offset, zero);
  for (int64_t k = k0; k < k1; ++k) {
    if (in_group == cpg) {
      in_group = 0;
      ++g;
      for (int i = 0; i < R; ++i)
        gw[i].set(util::h2f(sc[i][g]), has_offset ? util::h2f(of[i][g]) : 0.0f, has_offset, zero);
    }
    ++in_group;
    __m512 w0[R], w1[R];
    for (int i = 0; i < R; ++i) gw[i].chunk(row[i], k, has_offset, &w0[i], &w1[i]);
    const float* xk = xp + (k - k0) * B * 32;
    for (int b = 0; b < B; ++b) {
      const __m512 x0 = _mm512_loadu_ps(xk + b * 32), x1 = _mm512_loadu_ps(xk + b * 32 + 16);
      for (int i = 0; i < R; ++i) {
        acc[i][b] = _mm512_fmadd_ps(w0[i], x0, acc[i][b]);
        acc[i][b] = _mm512_fmadd_ps(w1[i], x1, acc[i][b]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int b = 0; b < B; ++b) _mm512_storeu_ps(acc_mem + (i * B + b) * 16, acc[i][b]);
}

template <int kBits, int R, int... Bs>
void multi_dispatch(const format::PackedView& w, const float* xp, int64_t nb, int64_t r, int64_t k0,
                    int64_t k1, float* acc, std::integer_sequence<int, Bs...>) {
  // One instantiation per pass size 1..kMaxPass.
  (void)((nb == Bs + 1 ? (multi_rows<kBits, R, Bs + 1>(w, xp, r, k0, k1, acc), true) : false) ||
         ...);
}

// Rows [r0, r1) of one pass and column block: pairs of rows, then a last one.
template <int kBits>
void block_rows(const format::PackedView& w, const float* xp, int64_t nb, int64_t r0, int64_t r1,
                int64_t k0, int64_t k1, float* scratch) {
  const auto sizes = std::make_integer_sequence<int, kMaxPass>{};
  int64_t r = r0;
  for (; r + 2 <= r1; r += 2)
    multi_dispatch<kBits, 2>(w, xp, nb, r, k0, k1, scratch + (r - r0) * nb * 16, sizes);
  if (r < r1) multi_dispatch<kBits, 1>(w, xp, nb, r, k0, k1, scratch + (r - r0) * nb * 16, sizes);
}

}  // namespace

int64_t multi_gemv_scratch_floats(int64_t rows, int64_t n) {
  return accumulator_floats(rows, n) + kPackedFloats;
}

void multi_gemv_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                     float* y, int64_t y_stride, int64_t r0, int64_t r1, float* scratch) {
  // Passes over the activation rows, balanced (n = 17 would run as 9 + 8);
  // inside a pass, column blocks over all rows of the range (above).
  const int64_t passes = (n + kMaxPass - 1) / kMaxPass;
  const int64_t chunks = w.cols / 32;
  float* xp = scratch + accumulator_floats(r1 - r0, n);
  for (int64_t p = 0, b0 = 0; p < passes; ++p) {
    const int64_t b1 = n * (p + 1) / passes, nb = b1 - b0;
    const float* xb = x + b0 * x_stride;
    for (int64_t k0 = 0; k0 < chunks; k0 += kKBlockChunks) {
      const int64_t k1 = k0 + kKBlockChunks < chunks ? k0 + kKBlockChunks : chunks;
      for (int64_t k = k0; k < k1; ++k)  // the block's activations as [chunk][b][32]
        for (int64_t b = 0; b < nb; ++b)
          std::memcpy(xp + ((k - k0) * nb + b) * 32, xb + b * x_stride + k * 32,
                      32 * sizeof(float));
      if (w.spec.bits == 4) {
        block_rows<4>(w, xp, nb, r0, r1, k0, k1, scratch);
      } else {
        block_rows<8>(w, xp, nb, r0, r1, k0, k1, scratch);
      }
    }
    for (int64_t r = r0; r < r1; ++r) {
      const float* acc = scratch + (r - r0) * nb * 16;
      for (int64_t b = 0; b < nb; ++b)
        y[(b0 + b) * y_stride + r] = _mm512_reduce_add_ps(_mm512_loadu_ps(acc + b * 16));
    }
    b0 = b1;
  }
}

}  // namespace qwenqat::engine::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
