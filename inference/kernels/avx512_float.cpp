// Float-activation kernels with AVX-512 (contracts: avx512_kernels.h, the same
// as their AVX2 forms in avx2_kernels.h): 16 lanes instead of 8.
//
// GEMV (n = 1, decode), 16 codes per conversion. Per 32-element chunk of a row: the codes as two
// vectors of 16 int32 (4-bit: low nibbles = elements 0-15, high = 16-31; 8-bit: bytes 0-15, 16-31),
// converted to float (exact) and FMAed with x into two accumulators; per group the sum of the two
// is scaled by s (one FMA), and the zero point (-zero * s) or offset times the group's x sum is
// added once per row. The same operations for every row: a row's result does not depend on r0, r1.
// Float sums are in another order than the AVX2 GEMV's.
//
// (A 16-lane form of the prefill GEMM's micro-kernel measured no faster than
// the AVX2 one on Zen 5, 44 G MAC/s per core for both; it is not kept.)
#include <immintrin.h>

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

constexpr int kPrefetchBytes = 4096;  // software prefetch distance on a row (as avx512_q8.cpp)

// The 32 codes of chunk k of a row as two vectors of 16 floats.
template <int kBits>
inline void chunk_codes(const uint8_t* row, int64_t k, __m512* c0, __m512* c1) {
  if constexpr (kBits == 4) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + k * 16));
    const __m128i mask = _mm_set1_epi8(0x0f);
    *c0 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(v, mask)));
    *c1 = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(v, 4), mask)));
  } else {
    const uint8_t* p = row + k * 32;
    *c0 = _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    *c1 = _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16))));
  }
}

template <int kBits>
void gemv_row(const format::PackedView& w, const float* x, const float* xsum, float* y, int64_t r) {
  const int64_t groups = w.groups_per_row();
  const int64_t cpg = w.spec.group_len(w.cols) / 32;  // chunks per group
  const float zero = static_cast<float>(w.spec.symmetric ? w.spec.zero_code() : 0);
  const uint8_t* row = w.data + r * w.row_bytes;
  const uint16_t* sc = w.scales + r * groups;
  __m512 total = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int64_t k = g * cpg; k < (g + 1) * cpg; ++k) {
      if (k % (16 / kBits) == 0)  // one cache line every 64 bytes of codes
        _mm_prefetch(reinterpret_cast<const char*>(row + k * 4 * kBits + kPrefetchBytes),
                     _MM_HINT_T0);
      __m512 c0, c1;
      chunk_codes<kBits>(row, k, &c0, &c1);
      a0 = _mm512_fmadd_ps(c0, _mm512_loadu_ps(x + k * 32), a0);
      a1 = _mm512_fmadd_ps(c1, _mm512_loadu_ps(x + k * 32 + 16), a1);
    }
    total = _mm512_fmadd_ps(_mm512_add_ps(a0, a1), _mm512_set1_ps(util::h2f(sc[g])), total);
  }
  const int64_t p = r * groups;
  const float corr = w.offsets ? util::dot_fp16(w.offsets + p, xsum, groups)
                               : -zero * util::dot_fp16(w.scales + p, xsum, groups);
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(total), _mm512_extractf32x8_ps(total, 1));
  y[r] = util::hsum(h) + corr;
}

}  // namespace

void gemv_rows(const format::PackedView& w, const float* x, float* y, int64_t r0, int64_t r1,
               float* xsum) {
  const int64_t glen = w.spec.group_len(w.cols);
  const int64_t groups = w.groups_per_row();
  for (int64_t g = 0; g < groups; ++g) {  // the same sums as avx2::gemv_rows
    __m256 a = _mm256_setzero_ps();
    for (int64_t e = g * glen; e < (g + 1) * glen; e += 8)
      a = _mm256_add_ps(a, _mm256_loadu_ps(x + e));
    xsum[g] = util::hsum(a);
  }
  for (int64_t r = r0; r < r1; ++r) {
    if (w.spec.bits == 4) {
      gemv_row<4>(w, x, xsum, y, r);
    } else {
      gemv_row<8>(w, x, xsum, y, r);
    }
  }
}

}  // namespace qwenqat::engine::avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options
