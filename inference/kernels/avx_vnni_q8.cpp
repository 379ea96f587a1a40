// The int8-activation matmul with AVX-VNNI (vpdpbusd, Intel Alder Lake /
// Sapphire Rapids and later, AMD Zen 5): avx2_q8_impl.h with one instruction
// per 32-byte dot product instead of maddubs + madd. Selected at run time
// (act_quant.cpp) when the CPU has AVX-VNNI; the same results bit for bit.
#include <immintrin.h>

#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/seq_blocks.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")

#define QWENQAT_Q8_VNNI 1
#include "inference/kernels/avx2_q8_impl.h"

namespace qwenqat::engine::avx2 {

void q8_matmul_rows_vnni(const format::PackedView& w, const Q8Activations& x, const float* eg,
                         float* y, int64_t y_stride, int64_t r0, int64_t r1) {
  q8_matmul_rows_impl(w, x, eg, y, y_stride, r0, r1);
}

}  // namespace qwenqat::engine::avx2

#pragma GCC pop_options
