// AVX-512 kernels (avx512_float.cpp, avx512_multi_gemv.cpp, avx512_q8.cpp, compiled under a
// `#pragma GCC target` region so the rest of the build needs no -mavx512*). Call them only when
// cpu_has_avx512() / cpu_has_avx512_vnni() (kernels/packed_matmul.h), which
// packed_matmul.cpp and act_quant.cpp check before dispatching here.
// The kernel files include every header but the kernel-local ones (avx2_util.h,
// avx2_q8_impl.h, avx2_q8_w8.h, avx512_q8_impl.h: internal linkage only)
// before the pragma: an inline function defined inside the region would be
// compiled for the newer ISA, and the linker may keep that copy for callers on
// any CPU.
#pragma once

#include <cstdint>

#include "export/format/packed_tensor.h"
#include "inference/kernels/act_quant.h"

namespace qwenqat::engine::avx512 {

// The float-activation GEMV of avx2::gemv_rows (avx2_kernels.h) with 16
// lanes (avx512_float.cpp): y[r] = w[r, :] . x for r in [r0, r1); requires
// avx2::supports_gemv(w) and cpu_has_avx512() (packed_matmul.h). xsum:
// scratch of w.groups_per_row() floats. Float sums in another order than the
// AVX2 GEMV's; a row's result does not depend on r0, r1.
void gemv_rows(const format::PackedView& w, const float* x, float* y, int64_t r0, int64_t r1,
               float* xsum);

// The multi-vector GEMV of avx2::multi_gemv_rows (avx2_kernels.h) with 16
// lanes (avx512_multi_gemv.cpp): y[b * y_stride + r] = w[r, :] . x[b] for
// b < n, r in [r0, r1); requires avx2::supports_gemv(w), n >= 1 and
// cpu_has_avx512(). scratch: multi_gemv_scratch_floats(r1 - r0, n) floats.
// The weights are exactly the reference dequantizer's; float sums in
// another order than the AVX2 form's. A (row, sequence) result does not
// depend on n, r0, r1 or the batch's other sequences. Thread-safe on
// disjoint row ranges with separate scratch.
void multi_gemv_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                     float* y, int64_t y_stride, int64_t r0, int64_t r1, float* scratch);
int64_t multi_gemv_scratch_floats(int64_t rows, int64_t n);

// True when q8_matmul_rows handles w: 4 or 8 bits, cols a multiple of 64
// (pairs of 32-blocks) and a group length that is a multiple of 32.
bool supports_q8(const format::PackedView& w);

// The int8-activation matmul of act_quant.h on the x.n activation rows of x,
// with the arguments of avx2::q8_matmul_rows (avx2_kernels.h): eg [x.n,
// groups] the per-weight-group sums of x.e; y[b * y_stride + r] for b < x.n,
// r in [r0, r1). The int32 block sums equal the reference's; float sums
// differ in order only. A (row, sequence) result does not depend on x.n, r0
// or r1. Thread-safe on disjoint row ranges.
// When x holds activations interleaved in chunks of 16 blocks (x.il_chunk ==
// 16), 4-bit rows take their full chunks from them (8 vpdpbusd and one float
// FMA per 16 blocks instead of 8 of each), otherwise every block is taken in
// pairs from x.q. The two give the same int32 block sums, float sums in
// different orders.
void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, const float* eg, float* y,
                    int64_t y_stride, int64_t r0, int64_t r1);

// Rows [b0, b1) of interleave_q8(x, 16) (act_quant.h), x already sized for
// chunks of 16: each chunk's 512 bytes transposed as unpack_q8_chunk16 does
// an 8-bit weight row's (the same bytes as the scalar loop), d and qsum
// permuted to sigma order, zero past the row. Needs AVX-512 BW; thread-safe
// on disjoint row ranges.
void interleave_q8_rows(Q8Activations* x, int64_t b0, int64_t b1);

}  // namespace qwenqat::engine::avx512
