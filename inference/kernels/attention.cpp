// attend (contract: kernels/attention.h): the scalar reference and an AVX2 /
// FMA form compiled with a target pragma, picked at run time.
#include "inference/kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "data/util/check.h"
#include "inference/kernels/attention_impl.h"
#include "inference/kernels/elementwise.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "inference/kernels/avx2_math.h"

namespace qwenqat::engine {
namespace {

// The 8 lane sums of a[0..7] as one vector (lane j = sum of a[j]'s lanes, in
// the same order for every j: ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7))).
inline __m256 sum8x8(const __m256 a[8]) {
  const __m256 h01 = _mm256_hadd_ps(a[0], a[1]), h23 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 h45 = _mm256_hadd_ps(a[4], a[5]), h67 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 h0123 = _mm256_hadd_ps(h01, h23), h4567 = _mm256_hadd_ps(h45, h67);
  // h0123 lanes: [a0 lo, a1 lo, a2 lo, a3 lo | a0 hi, a1 hi, a2 hi, a3 hi].
  return _mm256_add_ps(_mm256_permute2f128_ps(h0123, h4567, 0x20),
                       _mm256_permute2f128_ps(h0123, h4567, 0x31));
}

// 8 elements of a float32 or fp16 row as floats (fp16 exactly, F16C).
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// w[p0 + j] = scale * (q . k_{p0 + j}) for j < count <= 8 (the positions of a
// short block take the same operations as those of a full one).
template <class T>
inline __m256 scores8(const float* q, const T* k, int64_t stride, int64_t p0, int count, int64_t d,
                      float scale) {
  __m256 acc[8];
  for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
  for (int64_t i = 0; i < d; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    for (int j = 0; j < count; ++j)
      acc[j] = _mm256_fmadd_ps(load8(k + (p0 + j) * stride + i), qv, acc[j]);
  }
  return _mm256_mul_ps(sum8x8(acc), _mm256_set1_ps(scale));
}

}  // namespace

// Per head: the maximum of its visible scores, exp(w - max) 8 at a time (the
// tail through a padded vector), the sum, the probabilities; 0 past them.
void attention_impl::softmax_rows(float* w, int64_t heads, int64_t ctx, const int64_t* visible) {
  for (int64_t h = 0; h < heads; ++h) {
    float* wh = w + h * ctx;
    const int64_t n = visible ? visible[h] : ctx;  // the row's scores
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t p = 0;
    for (; p + 8 <= n; p += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(wh + p));
    alignas(32) float m8[8];
    _mm256_store_ps(m8, m);
    float mx = m8[0];
    for (int j = 1; j < 8; ++j) mx = m8[j] > mx ? m8[j] : mx;
    for (; p < n; ++p) mx = wh[p] > mx ? wh[p] : mx;
    const __m256 mv = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    p = 0;
    for (; p + 8 <= n; p += 8) {
      const __m256 e = avx2::math::exp8(_mm256_sub_ps(_mm256_loadu_ps(wh + p), mv));
      _mm256_storeu_ps(wh + p, e);
      sum = _mm256_add_ps(sum, e);
    }
    if (p < n) {  // padding lanes kept out of the sum
      const int64_t rest = n - p;
      alignas(32) float t[8];
      for (int64_t j = 0; j < 8; ++j) t[j] = j < rest ? wh[p + j] : mx;
      _mm256_store_ps(t, avx2::math::exp8(_mm256_sub_ps(_mm256_load_ps(t), mv)));
      for (int64_t j = 0; j < 8; ++j) {
        if (j < rest) wh[p + j] = t[j];
        t[j] = j < rest ? t[j] : 0.0f;
      }
      sum = _mm256_add_ps(sum, _mm256_load_ps(t));
    }
    alignas(32) float s8[8];
    _mm256_store_ps(s8, sum);
    const float total = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
    const __m256 inv = _mm256_set1_ps(1.0f / total);
    for (p = 0; p + 8 <= n; p += 8)
      _mm256_storeu_ps(wh + p, _mm256_mul_ps(_mm256_loadu_ps(wh + p), inv));
    for (; p < n; ++p) wh[p] *= 1.0f / total;
    std::fill(wh + n, wh + ctx, 0.0f);  // weight 0: their products add exactly 0
  }
}

namespace {

// softmax(scale * K q_h) . V for the `heads` query rows q_h sharing one kv
// head; w [heads, ctx] and out [heads, d] (contract: attend).
template <class T>
void attend_avx2(const float* q, int64_t heads, const int64_t* visible, const T* k, const T* v,
                 int64_t stride, int64_t ctx, int64_t d, float scale, float* w, float* out) {
  // Scores, block by block.
  attention_impl::over_pos_blocks(ctx, [&](int64_t pb, int64_t pe) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* qh = q + h * d;
      float* wh = w + h * ctx;
      int64_t p = pb;
      for (; p + 8 <= pe; p += 8) _mm256_storeu_ps(wh + p, scores8(qh, k, stride, p, 8, d, scale));
      if (p < pe) {
        alignas(32) float t[8];
        _mm256_store_ps(t, scores8(qh, k, stride, p, static_cast<int>(pe - p), d, scale));
        for (int64_t j = 0; j < pe - p; ++j) wh[p + j] = t[j];
      }
    }
  });
  attention_impl::softmax_rows(w, heads, ctx, visible);
  // out_h = sum_p w_hp v_p, block by block: each column's FMAs in position
  // order, 64 columns (8 accumulators) at a time, then 8.
  for (int64_t i = 0; i < heads * d; ++i) out[i] = 0.0f;
  attention_impl::over_pos_blocks(ctx, [&](int64_t pb, int64_t pe) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* wh = w + h * ctx;
      float* oh = out + h * d;
      int64_t i0 = 0;
      for (; i0 + 64 <= d; i0 += 64) {
        __m256 acc[8];
        for (int j = 0; j < 8; ++j) acc[j] = _mm256_loadu_ps(oh + i0 + 8 * j);
        for (int64_t p = pb; p < pe; ++p) {
          const __m256 wp = _mm256_set1_ps(wh[p]);
          const T* vp = v + p * stride + i0;
          for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(wp, load8(vp + 8 * j), acc[j]);
        }
        for (int j = 0; j < 8; ++j) _mm256_storeu_ps(oh + i0 + 8 * j, acc[j]);
      }
      for (; i0 < d; i0 += 8) {
        __m256 acc = _mm256_loadu_ps(oh + i0);
        for (int64_t p = pb; p < pe; ++p)
          acc = _mm256_fmadd_ps(_mm256_set1_ps(wh[p]), load8(v + p * stride + i0), acc);
        _mm256_storeu_ps(oh + i0, acc);
      }
    }
  });
}

}  // namespace
}  // namespace qwenqat::engine

#pragma GCC pop_options

namespace qwenqat::engine {

namespace {

// One head by the textbook formula (kScalar; kAvx2 with d % 8 != 0).
void attend_reference(const float* q, const KvRows& kv, int64_t ctx, int64_t d, float scale,
                      float* w, float* out, KernelIsa isa) {
  std::vector<float> row(static_cast<size_t>(d));  // a position's fp16 row as floats
  const auto at = [&](const float* f32, const uint16_t* f16, int64_t p) -> const float* {
    if (f32) return f32 + p * kv.stride;
    fp16_to_f32_row(f16 + p * kv.stride, row.data(), d);
    return row.data();
  };
  float mx = -INFINITY;
  for (int64_t p = 0; p < ctx; ++p) {
    w[p] = dot(q, at(kv.k, kv.k16, p), d, isa) * scale;
    mx = std::max(mx, w[p]);
  }
  float sum = 0.0f;
  for (int64_t p = 0; p < ctx; ++p) {
    w[p] = std::exp(w[p] - mx);
    sum += w[p];
  }
  std::fill(out, out + d, 0.0f);
  for (int64_t p = 0; p < ctx; ++p) {
    w[p] /= sum;
    const float* vp = at(kv.v, kv.v16, p);
    for (int64_t i = 0; i < d; ++i) out[i] += w[p] * vp[i];
  }
}

}  // namespace

void attend(const float* q, int64_t heads, const KvRows& kv, int64_t ctx, int64_t d, float scale,
            float* w, float* out, KernelIsa isa) {
  attend_masked(q, heads, nullptr, kv, ctx, d, scale, w, out, isa);
}

void attend_masked(const float* q, int64_t heads, const int64_t* visible, const KvRows& kv,
                   int64_t ctx, int64_t d, float scale, float* w, float* out, KernelIsa isa) {
  for (int64_t h = 0; visible && h < heads; ++h)
    QWENQAT_CHECK(visible[h] >= 1 && visible[h] <= ctx, "attend_masked: head ", h, " sees ",
                  visible[h], " positions, outside [1, ", ctx, "]");
  if (isa == KernelIsa::kAvx2 && d % 16 == 0 && cpu_has_avx512())
    return attention_impl::attend_avx512(q, heads, visible, kv, ctx, d, scale, w, out);
  if (isa == KernelIsa::kAvx2 && d % 8 == 0) {
    if (kv.k16)
      return attend_avx2(q, heads, visible, kv.k16, kv.v16, kv.stride, ctx, d, scale, w, out);
    return attend_avx2(q, heads, visible, kv.k, kv.v, kv.stride, ctx, d, scale, w, out);
  }
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t n = visible ? visible[h] : ctx;
    attend_reference(q + h * d, kv, n, d, scale, w + h * ctx, out + h * d, isa);
    std::fill(w + h * ctx + n, w + (h + 1) * ctx, 0.0f);
  }
}

}  // namespace qwenqat::engine
