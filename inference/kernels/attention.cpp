// attend (contract: kernels/attention.h): the scalar reference and an AVX2 /
// FMA form compiled with a target pragma, picked at run time.
#include "inference/kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

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

template <class T>
void attend_avx2(const float* q, const T* k, const T* v, int64_t stride, int64_t ctx, int64_t d,
                 float scale, float* w, float* out) {
  // Scores and their maximum.
  __m256 mx = _mm256_set1_ps(-INFINITY);
  int64_t p = 0;
  for (; p + 8 <= ctx; p += 8) {
    const __m256 s = scores8(q, k, stride, p, 8, d, scale);
    _mm256_storeu_ps(w + p, s);
    mx = _mm256_max_ps(mx, s);
  }
  if (p < ctx) {
    alignas(32) float t[8];
    _mm256_store_ps(t, scores8(q, k, stride, p, static_cast<int>(ctx - p), d, scale));
    std::copy(t, t + (ctx - p), w + p);
  }
  alignas(32) float m8[8];
  _mm256_store_ps(m8, mx);
  float m = *std::max_element(m8, m8 + 8);
  for (int64_t i = p; i < ctx; ++i) m = std::max(m, w[i]);
  // exp(w - max), 8 at a time (the tail through a padded vector), and the sum.
  const __m256 mv = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  for (p = 0; p + 8 <= ctx; p += 8) {
    const __m256 e = avx2::math::exp8(_mm256_sub_ps(_mm256_loadu_ps(w + p), mv));
    _mm256_storeu_ps(w + p, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (p < ctx) {  // the tail through a padded vector; padding lanes kept out of the sum
    alignas(32) float t[8];
    std::fill(t, t + 8, m);
    std::copy(w + p, w + ctx, t);
    _mm256_store_ps(t, avx2::math::exp8(_mm256_sub_ps(_mm256_load_ps(t), mv)));
    std::copy(t, t + (ctx - p), w + p);
    std::fill(t + (ctx - p), t + 8, 0.0f);
    sum = _mm256_add_ps(sum, _mm256_load_ps(t));
  }
  alignas(32) float s8[8];
  _mm256_store_ps(s8, sum);
  const float total = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
  const __m256 inv = _mm256_set1_ps(1.0f / total);
  for (p = 0; p + 8 <= ctx; p += 8)
    _mm256_storeu_ps(w + p, _mm256_mul_ps(_mm256_loadu_ps(w + p), inv));
  for (; p < ctx; ++p) w[p] *= 1.0f / total;
  // out = sum_p w_p v_p, 64 columns (8 accumulators) at a time.
  int64_t i0 = 0;
  for (; i0 + 64 <= d; i0 += 64) {
    __m256 acc[8];
    for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
    for (p = 0; p < ctx; ++p) {
      const __m256 wp = _mm256_set1_ps(w[p]);
      const T* vp = v + p * stride + i0;
      for (int j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(wp, load8(vp + 8 * j), acc[j]);
    }
    for (int j = 0; j < 8; ++j) _mm256_storeu_ps(out + i0 + 8 * j, acc[j]);
  }
  for (; i0 < d; i0 += 8) {
    __m256 acc = _mm256_setzero_ps();
    for (p = 0; p < ctx; ++p)
      acc = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), load8(v + p * stride + i0), acc);
    _mm256_storeu_ps(out + i0, acc);
  }
}

}  // namespace
}  // namespace qwenqat::engine

#pragma GCC pop_options

namespace qwenqat::engine {

void attend(const float* q, const KvRows& kv, int64_t ctx, int64_t d, float scale, float* w,
            float* out, KernelIsa isa) {
  if (isa == KernelIsa::kAvx2 && d % 8 == 0) {
    if (kv.k16) return attend_avx2(q, kv.k16, kv.v16, kv.stride, ctx, d, scale, w, out);
    return attend_avx2(q, kv.k, kv.v, kv.stride, ctx, d, scale, w, out);
  }
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

}  // namespace qwenqat::engine
