// The multi-vector GEMV for small batches (n = 2..kMaxMultiVector activation
// rows, batched decode): each packed 32-element chunk is unpacked and
// dequantized once into registers, float(int(u) - zero) * scale (+ offset),
// exactly the reference dequantizer's values, and FMAed against up to
// kMaxPass activation rows, one 8-lane accumulator per activation row. No
// dequantized tile is written. The accumulation order of one (weight row,
// activation row) pair is the same for any batch size and pass split, so a
// sequence's result does not depend on which other sequences share its batch;
// it differs from the scalar reference (a sequential dot) only in float
// summation order.
#include <immintrin.h>

#include "inference/kernels/avx2_kernels.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#include "inference/kernels/avx2_util.h"

namespace qwenqat::engine::avx2 {

namespace {

// Activation rows per pass (accumulators held in registers).
constexpr int kMaxPass = 8;
// Chunks of 32 columns per block: a pass's activations, kMaxPass * 512
// floats = 16 KB, stay in L1.
constexpr int64_t kKBlockChunks = 16;

// Row r against B activation rows over chunks [k0, k1): the B accumulators
// are loaded from acc (zero when k0 == 0) and stored back.
template <int kBits, int B>
void multi_row(const format::PackedView& w, const float* x, int64_t x_stride, int64_t r, int64_t k0,
               int64_t k1, float* acc_mem) {
  const int64_t groups = w.groups_per_row();
  const int64_t cpg = w.spec.group_len(w.cols) / 32;  // chunks per group
  const __m256i zero = _mm256_set1_epi32(w.spec.symmetric ? w.spec.zero_code() : 0);
  const uint8_t* row = w.data + r * w.row_bytes;
  const uint16_t* sc = w.scales + r * groups;
  const uint16_t* of = w.offsets ? w.offsets + r * groups : nullptr;
  __m256 acc[B];
  for (int b = 0; b < B; ++b)
    acc[b] = k0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(acc_mem + b * 8);
  int64_t g = k0 / cpg, in_group = k0 % cpg;
  __m256 s = _mm256_set1_ps(util::h2f(sc[g]));
  __m256 o = of ? _mm256_set1_ps(util::h2f(of[g])) : _mm256_setzero_ps();
  for (int64_t k = k0; k < k1; ++k) {
    if (in_group == cpg) {
      in_group = 0;
      ++g;
      s = _mm256_set1_ps(util::h2f(sc[g]));
      if (of) o = _mm256_set1_ps(util::h2f(of[g]));
    }
    ++in_group;
    __m256i c[4];
    util::unpack_chunk<kBits>(row, k, c);
    for (int j = 0; j < 4; ++j) {
      __m256 wv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(c[j], zero)), s);
      if (of) wv = _mm256_add_ps(wv, o);
      const float* xk = x + k * 32 + j * 8;
      for (int b = 0; b < B; ++b)
        acc[b] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(xk + b * x_stride), acc[b]);
    }
  }
  for (int b = 0; b < B; ++b) _mm256_storeu_ps(acc_mem + b * 8, acc[b]);
}

template <int kBits>
void multi_dispatch(const format::PackedView& w, const float* x, int64_t nb, int64_t x_stride,
                    int64_t r, int64_t k0, int64_t k1, float* acc) {
  switch (nb) {
#define QWENQAT_PASS(B) \
  case B:               \
    return multi_row<kBits, B>(w, x, x_stride, r, k0, k1, acc);
    QWENQAT_PASS(1)
    QWENQAT_PASS(2)
    QWENQAT_PASS(3)
    QWENQAT_PASS(4)
    QWENQAT_PASS(5)
    QWENQAT_PASS(6)
    QWENQAT_PASS(7)
    QWENQAT_PASS(8)
#undef QWENQAT_PASS
  }
}

}  // namespace

int64_t multi_gemv_scratch_floats(int64_t rows, int64_t n) {
  return rows * (n < kMaxPass ? n : kMaxPass) * 8;
}

void multi_gemv_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                     float* y, int64_t y_stride, int64_t r0, int64_t r1, float* scratch) {
  // Passes over the activation rows, balanced (n = 9 runs as 5 + 4, not
  // 8 + 1: a lone accumulator is latency-bound); inside a pass, blocks of
  // kKBlockChunks chunks so that the pass's activations stay in L1 while
  // every row of [r0, r1) is multiplied with them. The accumulators persist
  // in `scratch` between blocks, so the blocking does not change the sums.
  const int64_t passes = (n + kMaxPass - 1) / kMaxPass;
  const int64_t chunks = w.cols / 32;
  for (int64_t p = 0, b0 = 0; p < passes; ++p) {
    const int64_t b1 = n * (p + 1) / passes, nb = b1 - b0;
    const float* xb = x + b0 * x_stride;
    for (int64_t k0 = 0; k0 < chunks; k0 += kKBlockChunks) {
      const int64_t k1 = k0 + kKBlockChunks < chunks ? k0 + kKBlockChunks : chunks;
      for (int64_t r = r0; r < r1; ++r) {
        float* acc = scratch + (r - r0) * nb * 8;
        if (w.spec.bits == 4) {
          multi_dispatch<4>(w, xb, nb, x_stride, r, k0, k1, acc);
        } else {
          multi_dispatch<8>(w, xb, nb, x_stride, r, k0, k1, acc);
        }
      }
    }
    for (int64_t r = r0; r < r1; ++r) {
      const float* acc = scratch + (r - r0) * nb * 8;
      for (int64_t b = 0; b < nb; ++b)
        y[(b0 + b) * y_stride + r] = util::hsum(_mm256_loadu_ps(acc + b * 8));
    }
    b0 = b1;
  }
}

}  // namespace qwenqat::engine::avx2

#pragma GCC pop_options
