// The AVX2 int8-activation matmul: avx2_q8_impl.h with maddubs + madd for
// the byte dot products (any AVX2 CPU).
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

#define QWENQAT_Q8_VNNI 0
#include "inference/kernels/avx2_q8_impl.h"

namespace qwenqat::engine::avx2 {

void q8_matmul_rows(const format::PackedView& w, const int8_t* q, const float* d, const float* eg,
                    int64_t n, float* y, int64_t y_stride, int64_t r0, int64_t r1) {
  q8_matmul_rows_impl(w, q, d, eg, n, y, y_stride, r0, r1);
}

}  // namespace qwenqat::engine::avx2

#pragma GCC pop_options
