// attend's AVX-512 form (contract: attention_impl.h). Per GQA group and
// position block (kPosBlock positions, whose rows stay in L2 while the
// group's heads read them):
//   scores: w[h, p] = scale * (q_h . k_p) for a tile of H heads x P
//     positions (4 x 4, 3 x 4, 2 x 8, 1 x 16) at once: up to 16 accumulators
//     along head_dim, each key row's 16-element piece loaded once for the
//     tile's heads, each query piece once for its P positions; the 16 dot
//     products reduced together (sum16x16, the same additions for every
//     entry);
//   softmax_rows (shared with the AVX2 form);
//   out[h, i] += sum_p w[h, p] v_p[i] for a tile of up to 4 heads x 64
//     columns: each value row's piece loaded once for the tile's heads, each
//     column's FMAs in position order (continued across blocks through out).
// Both passes prefetch the rows kPrefetchPositions ahead (attention_impl.h).
// The AVX2 form loads a key or value vector for every FMA, this one one per
// two to four, with twice the lanes. 2000-token prompt of the 1.5B shapes
// on Zen 5 (perf, w4g32): attention 21 % of the prefill's samples -> 13 %,
// prefill 110 -> 139 tokens/s (alternating runs); decode after it, paired
// per step: 0.96-0.98x time.
#include <immintrin.h>

#include "inference/kernels/attention_impl.h"

#pragma GCC push_options
// GCC 12 reports the undefined pass-through operands inside the AVX-512
// intrinsics (avx512fintrin.h) as (maybe-)uninitialized: a false positive.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")

#include "inference/kernels/avx512_util.h"

namespace qwenqat::engine::attention_impl {
namespace {

using avx512::sum16x16;

constexpr int kTile = 4;          // heads per tile
constexpr int64_t kColTile = 64;  // columns per value tile (4 vectors)

// 16 elements of a float32 or fp16 row as floats (fp16 exactly).
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// w[h * ctx + p0 + j] = scale * (q_h . k_{p0 + j}) for heads h in [h0, h0 + H)
// and j < count <= P, H * P <= 16: entry e = P * h + j is accumulator e,
// reduced to lane 4 (e % 4) + e / 4. Entries past count repeat the last
// position's row and are not stored (the others take the same operations).
template <int H, int P, class T>
__attribute__((always_inline)) inline void score_tile(const float* q, int64_t h0, const T* k,
                                                      int64_t stride, int64_t p0, int count,
                                                      int64_t d, float scale, float* w,
                                                      int64_t ctx) {
  static_assert(H * P <= 16, "a score tile has 16 accumulators");
  const T* rows[P];
  for (int j = 0; j < P; ++j) rows[j] = k + (p0 + (j < count ? j : count - 1)) * stride;
  __m512 acc[16];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  for (int64_t i = 0; i < d; i += 16) {
    __m512 kv[P];
    for (int j = 0; j < P; ++j) kv[j] = load16(rows[j] + i);
    for (int h = 0; h < H; ++h) {
      const __m512 qv = _mm512_loadu_ps(q + (h0 + h) * d + i);
      for (int j = 0; j < P; ++j) acc[P * h + j] = _mm512_fmadd_ps(qv, kv[j], acc[P * h + j]);
    }
  }
  alignas(64) float s[16];
  _mm512_store_ps(s, _mm512_mul_ps(sum16x16(acc), _mm512_set1_ps(scale)));
  for (int h = 0; h < H; ++h)
    for (int j = 0; j < count; ++j) {
      const int e = P * h + j;
      w[(h0 + h) * ctx + p0 + j] = s[4 * (e % 4) + e / 4];
    }
}

// Scores of heads [h0, h0 + H) over positions [pb, pe): tiles of H heads x
// P positions (4 x 4, 3 x 4, 2 x 8, 1 x 16).
template <int H, class T>
void score_row(const float* q, int64_t h0, const T* k, int64_t stride, int64_t pb, int64_t pe,
               int64_t d, float scale, float* w, int64_t ctx) {
  constexpr int P = H == 3 ? 4 : 16 / H;
  for (int64_t p = pb; p < pe; p += P) {
    const int count = static_cast<int>(pe - p < P ? pe - p : P);
    prefetch_rows(k, stride, p + kPrefetchPositions, P, 0, d * static_cast<int64_t>(sizeof(T)));
    score_tile<H, P>(q, h0, k, stride, p, count, d, scale, w, ctx);
  }
}

// out[h * d + i0 + c] += sum_{p in [pb, pe)} w[h * ctx + p] v_p[i0 + c] for
// heads [h0, h0 + H) and C vectors of columns (C * 16 columns from i0).
template <int H, int C, class T>
void value_tile(const float* w, int64_t h0, const T* v, int64_t stride, int64_t pb, int64_t pe,
                int64_t i0, int64_t d, int64_t ctx, float* out) {
  __m512 acc[H][C];
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < C; ++c) acc[h][c] = _mm512_loadu_ps(out + (h0 + h) * d + i0 + 16 * c);
  for (int64_t p = pb; p < pe; ++p) {
    prefetch_rows(v, stride, p + kPrefetchPositions, 1, i0,
                  16 * C * static_cast<int64_t>(sizeof(T)));
    __m512 vv[C];
    for (int c = 0; c < C; ++c) vv[c] = load16(v + p * stride + i0 + 16 * c);
    for (int h = 0; h < H; ++h) {
      const __m512 wp = _mm512_set1_ps(w[(h0 + h) * ctx + p]);
      for (int c = 0; c < C; ++c) acc[h][c] = _mm512_fmadd_ps(wp, vv[c], acc[h][c]);
    }
  }
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(out + (h0 + h) * d + i0 + 16 * c, acc[h][c]);
}

template <int H, class T>
void value_row(const float* w, int64_t h0, const T* v, int64_t stride, int64_t pb, int64_t pe,
               int64_t d, int64_t ctx, float* out) {
  int64_t i0 = 0;
  for (; i0 + kColTile <= d; i0 += kColTile)
    value_tile<H, kColTile / 16>(w, h0, v, stride, pb, pe, i0, d, ctx, out);
  for (; i0 < d; i0 += 16) value_tile<H, 1>(w, h0, v, stride, pb, pe, i0, d, ctx, out);
}

// Calls f.template operator()<H>(h0) for head tiles covering [0, heads).
template <class F>
void over_head_tiles(int64_t heads, F&& f) {
  for (int64_t h0 = 0; h0 < heads; h0 += kTile) {
    switch (heads - h0 < kTile ? heads - h0 : kTile) {
      case 1:
        f.template operator()<1>(h0);
        break;
      case 2:
        f.template operator()<2>(h0);
        break;
      case 3:
        f.template operator()<3>(h0);
        break;
      default:
        f.template operator()<4>(h0);
    }
  }
}

template <class T>
void attend_rows(const float* q, int64_t heads, const int64_t* visible, const T* k, const T* v,
                 int64_t stride, int64_t ctx, int64_t d, float scale, float* w, float* out) {
  over_pos_blocks(ctx, [&](int64_t pb, int64_t pe) {
    over_head_tiles(heads, [&]<int H>(int64_t h0) {
      score_row<H>(q, h0, k, stride, pb, pe, d, scale, w, ctx);
    });
  });
  softmax_rows(w, heads, ctx, visible);
  for (int64_t i = 0; i < heads * d; ++i) out[i] = 0.0f;
  over_pos_blocks(ctx, [&](int64_t pb, int64_t pe) {
    over_head_tiles(
        heads, [&]<int H>(int64_t h0) { value_row<H>(w, h0, v, stride, pb, pe, d, ctx, out); });
  });
}

}  // namespace

void attend_avx512(const float* q, int64_t heads, const int64_t* visible, const KvRows& kv,
                   int64_t ctx, int64_t d, float scale, float* w, float* out) {
  if (kv.k16)
    return attend_rows(q, heads, visible, kv.k16, kv.v16, kv.stride, ctx, d, scale, w, out);
  attend_rows(q, heads, visible, kv.k, kv.v, kv.stride, ctx, d, scale, w, out);
}

}  // namespace qwenqat::engine::attention_impl

#pragma GCC diagnostic pop
#pragma GCC pop_options
