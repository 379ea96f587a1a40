// AVX2/FMA/F16C kernels on packed weights. Everything after the
// `#pragma GCC target` is compiled for AVX2 and is reached only through the
// run-time dispatch in packed_matmul.cpp; no standard-library templates are
// instantiated there (they could be merged with the portable copies).
//
// Exactness: the dequantizer computes float(int(u) - zero) * scale (symmetric)
// and float(u) * scale + offset (asymmetric) with a separate multiply and add,
// exactly quant::dequantize_one. The GEMV instead accumulates sum(u * x) per
// group and applies the scale and zero point once per group, which differs
// from the reference only in float rounding. The multi-vector GEMV is in
// avx2_multi_gemv.cpp, the int8-activation kernels in avx2_q8.cpp.
#include "inference/kernels/avx2_kernels.h"

#include <immintrin.h>

#include <cstring>

#include "data/util/half.h"

namespace qwenqat::engine::avx2 {

bool supports_dequant(const format::PackedView& w) {
  return (w.spec.bits == 4 || w.spec.bits == 8) && w.spec.group_len(w.cols) % 8 == 0;
}

bool supports_gemv(const format::PackedView& w) {
  return (w.spec.bits == 4 || w.spec.bits == 8) && w.cols % 32 == 0 &&
         w.spec.group_len(w.cols) % 32 == 0;
}

}  // namespace qwenqat::engine::avx2

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "inference/kernels/avx2_util.h"

namespace qwenqat::engine::avx2 {

using util::h2f;
using util::hsum;

// Weight rows per GEMV iteration (they share the activation loads). Measured
// with kernel_bench; see docs/PERFORMANCE.md.
constexpr int kGemvRows = 1;

void dequantize_row(const format::PackedView& w, int64_t r, float* out) {
  const auto& spec = w.spec;
  const int64_t glen = spec.group_len(w.cols);
  const int64_t groups = w.groups_per_row();
  const uint8_t* row = w.data + r * w.row_bytes;
  const uint16_t* sc = w.scales + r * groups;
  const uint16_t* of = w.offsets ? w.offsets + r * groups : nullptr;
  const __m256i zero = _mm256_set1_epi32(spec.symmetric ? spec.zero_code() : 0);
  auto emit = [&](int64_t e, __m256i codes) {
    const int64_t g = e / glen;
    const __m256 s = _mm256_set1_ps(h2f(sc[g]));
    if (spec.symmetric) {
      _mm256_storeu_ps(out + e,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(codes, zero)), s));
    } else {
      const __m256 o = _mm256_set1_ps(h2f(of[g]));
      _mm256_storeu_ps(out + e, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(codes), s), o));
    }
  };
  auto scalar_one = [&](int64_t e, int u) {
    const int64_t g = e / glen;
    quant::GroupParams p;
    p.scale = h2f(sc[g]);
    p.offset = of ? h2f(of[g]) : 0.0f;
    out[e] = quant::dequantize_one(static_cast<uint8_t>(u), p, spec);
  };
  if (spec.bits == 4) {
    const int64_t full = w.cols / 32;
    __m256i c[4];
    for (int64_t k = 0; k < full; ++k) {
      util::unpack_q4_chunk(row + k * 16, c);
      for (int j = 0; j < 4; ++j) emit(k * 32 + j * 8, c[j]);
    }
    const uint8_t* tail = row + full * 16;
    for (int64_t e = full * 32; e < w.cols; ++e) {
      const int64_t j = e - full * 32;
      scalar_one(e, j < 16 ? (tail[j] & 0x0f) : (tail[j - 16] >> 4));
    }
  } else {  // 8 bits
    int64_t e = 0;
    for (; e + 8 <= w.cols; e += 8) emit(e, util::load_q8_8(row + e));
    for (; e < w.cols; ++e) scalar_one(e, row[e]);
  }
}

namespace {

// Rows [r, r + R) of a 4- or 8-bit matrix whose groups are whole 32-element
// chunks, R rows per iteration sharing the activation loads. Every row gets
// the same operations in the same order for any R, so the result of a row
// does not depend on R. xsum: per-group sums of x.
template <int kBits, int R>
inline void gemv_block(const format::PackedView& w, const float* x, const float* xsum, float* y,
                       int64_t r) {
  const int64_t groups = w.groups_per_row();
  const int64_t cpg = w.spec.group_len(w.cols) / 32;  // chunks per group
  const float zero = static_cast<float>(w.spec.symmetric ? w.spec.zero_code() : 0);
  __m256 total[R];
  for (int i = 0; i < R; ++i) total[i] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m256 a0[R], a1[R];
    for (int i = 0; i < R; ++i) a0[i] = a1[i] = _mm256_setzero_ps();
    for (int64_t k = g * cpg; k < (g + 1) * cpg; ++k) {
      const float* xs = x + k * 32;
      const __m256 x0 = _mm256_loadu_ps(xs), x1 = _mm256_loadu_ps(xs + 8);
      const __m256 x2 = _mm256_loadu_ps(xs + 16), x3 = _mm256_loadu_ps(xs + 24);
      for (int i = 0; i < R; ++i) {
        __m256i c[4];
        util::unpack_chunk<kBits>(w.data + (r + i) * w.row_bytes, k, c);
        a0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c[0]), x0, a0[i]);
        a1[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c[1]), x1, a1[i]);
        a0[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c[2]), x2, a0[i]);
        a1[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c[3]), x3, a1[i]);
      }
    }
    for (int i = 0; i < R; ++i) {
      const __m256 s = _mm256_set1_ps(h2f(w.scales[(r + i) * groups + g]));
      total[i] = _mm256_fmadd_ps(_mm256_add_ps(a0[i], a1[i]), s, total[i]);
    }
  }
  for (int i = 0; i < R; ++i) {
    // Zero point (symmetric: -zero * scale) or offset, times the group's x sum.
    const int64_t p = (r + i) * groups;
    const float corr = w.offsets ? util::dot_fp16(w.offsets + p, xsum, groups)
                                 : -zero * util::dot_fp16(w.scales + p, xsum, groups);
    y[r + i] = hsum(total[i]) + corr;
  }
}

template <int kBits>
void gemv_impl(const format::PackedView& w, const float* x, const float* xsum, float* y, int64_t r0,
               int64_t r1) {
  int64_t r = r0;
  for (; r + kGemvRows <= r1; r += kGemvRows) gemv_block<kBits, kGemvRows>(w, x, xsum, y, r);
  for (; r < r1; ++r) gemv_block<kBits, 1>(w, x, xsum, y, r);
}

}  // namespace

void gemv_rows(const format::PackedView& w, const float* x, float* y, int64_t r0, int64_t r1,
               float* xsum) {
  const int64_t glen = w.spec.group_len(w.cols);
  const int64_t groups = w.groups_per_row();
  for (int64_t g = 0; g < groups; ++g) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t e = g * glen; e < (g + 1) * glen; e += 8)
      a = _mm256_add_ps(a, _mm256_loadu_ps(x + e));
    xsum[g] = hsum(a);
  }
  if (w.spec.bits == 4) {
    gemv_impl<4>(w, x, xsum, y, r0, r1);
  } else {
    gemv_impl<8>(w, x, xsum, y, r0, r1);
  }
}

namespace {

// 8 weights as floats: float32, or bf16 bits widened exactly (<< 16).
inline __m256 load_w8(const float* w) { return _mm256_loadu_ps(w); }
inline __m256 load_w8(const uint16_t* w) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline float w_at(const float* w) { return *w; }
inline float w_at(const uint16_t* w) { return bf16_to_f32(*w); }

// out[i][j] += tile row i . x row j over len elements, for R rows and B batch.
// T: float, or uint16_t bf16 bits (the same values, so the same bits out).
template <int R, int B, class T>
inline void micro_kernel(const T* w, int64_t w_stride, const float* x, int64_t x_stride,
                         int64_t len, float* y, int64_t y_stride) {
  __m256 acc[R][B];
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < B; ++j) acc[i][j] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= len; k += 8) {
    __m256 xv[B];
    for (int j = 0; j < B; ++j) xv[j] = _mm256_loadu_ps(x + j * x_stride + k);
    for (int i = 0; i < R; ++i) {
      const __m256 wv = load_w8(w + i * w_stride + k);
      for (int j = 0; j < B; ++j) acc[i][j] = _mm256_fmadd_ps(wv, xv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < B; ++j) {
      float s = hsum(acc[i][j]);
      for (int64_t t = k; t < len; ++t) s += w_at(w + i * w_stride + t) * x[j * x_stride + t];
      y[j * y_stride + i] += s;
    }
  }
}

template <int R, class T>
inline void micro_rows(const T* w, int64_t w_stride, const float* x, int64_t n, int64_t x_stride,
                       int64_t len, float* y, int64_t y_stride) {
  int64_t b = 0;
  for (; b + 3 <= n; b += 3)
    micro_kernel<R, 3>(w, w_stride, x + b * x_stride, x_stride, len, y + b * y_stride, y_stride);
  for (; b < n; ++b)
    micro_kernel<R, 1>(w, w_stride, x + b * x_stride, x_stride, len, y + b * y_stride, y_stride);
}

template <class T>
void gemm_tile_impl(const T* tile, int64_t tile_rows, int64_t tile_stride, const float* x,
                    int64_t n, int64_t x_stride, float* y, int64_t y_stride, int64_t k0,
                    int64_t k1) {
  const int64_t len = k1 - k0;
  int64_t i = 0;
  // A single activation row (decode) streams 8 weight rows at a time: more
  // rows in flight per thread (1.5B shapes, two threads, Zen 4, decode
  // against 4 rows: float32 4.8-6.0 -> 7.1-8.2 tokens/s, bf16 7.8-8.2 ->
  // 7.0-9.8). A row's operations do not depend on its company: the same bits.
  if (n == 1)
    for (; i + 8 <= tile_rows; i += 8)
      micro_rows<8>(tile + i * tile_stride + k0, tile_stride, x + k0, n, x_stride, len, y + i,
                    y_stride);
  for (; i + 4 <= tile_rows; i += 4)
    micro_rows<4>(tile + i * tile_stride + k0, tile_stride, x + k0, n, x_stride, len, y + i,
                  y_stride);
  for (; i < tile_rows; ++i)
    micro_rows<1>(tile + i * tile_stride + k0, tile_stride, x + k0, n, x_stride, len, y + i,
                  y_stride);
}

}  // namespace

void gemm_tile_accumulate(const float* tile, int64_t tile_rows, int64_t tile_stride, const float* x,
                          int64_t n, int64_t x_stride, float* y, int64_t y_stride, int64_t k0,
                          int64_t k1) {
  gemm_tile_impl(tile, tile_rows, tile_stride, x, n, x_stride, y, y_stride, k0, k1);
}

void gemm_tile_accumulate(const uint16_t* tile, int64_t tile_rows, int64_t tile_stride,
                          const float* x, int64_t n, int64_t x_stride, float* y, int64_t y_stride,
                          int64_t k0, int64_t k1) {
  gemm_tile_impl(tile, tile_rows, tile_stride, x, n, x_stride, y, y_stride, k0, k1);
}

float dot(const float* a, const float* b, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= n; k += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), a1);
  }
  for (; k + 8 <= n; k += 8)
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), a0);
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

}  // namespace qwenqat::engine::avx2

#pragma GCC pop_options
