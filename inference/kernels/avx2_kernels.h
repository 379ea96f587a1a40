// AVX2/FMA/F16C kernels, compiled with __attribute__((target)) in
// avx2_kernels.cpp so the rest of the build needs no -mavx2. Call them only
// when cpu_has_avx2() (packed_matmul.cpp dispatches). Contracts as in
// kernels/packed_matmul.h.
#pragma once

#include <cstdint>

#include "export/format/packed_tensor.h"
#include "inference/kernels/act_quant.h"

namespace qwenqat::engine::avx2 {

// True when the fast vector dequantizer handles w (4 or 8 bits and a group
// length that is a multiple of 8); other layouts fall back to the scalar one.
bool supports_dequant(const format::PackedView& w);
// True when the grouped GEMV handles w (4 or 8 bits, cols and group length
// multiples of 32).
bool supports_gemv(const format::PackedView& w);

// Dequantizes row r into out[w.cols]; requires supports_dequant(w).
void dequantize_row(const format::PackedView& w, int64_t r, float* out);

// y[r] = w[r, :] . x for r in [r0, r1); requires supports_gemv(w).
// xsum: scratch of w.groups_per_row() floats.
void gemv_rows(const format::PackedView& w, const float* x, float* y, int64_t r0, int64_t r1,
               float* xsum);

// y[b * y_stride + r] = w[r, :] . x[b] for b < n, r in [r0, r1): the
// multi-vector GEMV (avx2_multi_gemv.cpp), for small n; requires
// supports_gemv(w) and n >= 1. scratch: multi_gemv_scratch_floats(r1 - r0, n)
// floats (accumulators kept between column blocks).
void multi_gemv_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                     float* y, int64_t y_stride, int64_t r0, int64_t r1, float* scratch);
int64_t multi_gemv_scratch_floats(int64_t rows, int64_t n);

// The int8-activation matmul of act_quant.h (avx2_q8.cpp) on the x.n
// activation rows of x; eg [x.n, groups] the per-weight-group sums of x.e;
// requires 4 or 8 bits and cols, group length multiples of 32. When x holds
// activations interleaved in chunks of 8 blocks (x.il_chunk == 8), 4-bit rows
// take their full chunks from them (the same int32 block sums, float sums in
// another order). A (row, sequence) result does not depend on x.n, r0 or r1.
// Thread-safe on disjoint row ranges.
void q8_matmul_rows(const format::PackedView& w, const Q8Activations& x, const float* eg, float* y,
                    int64_t y_stride, int64_t r0, int64_t r1);
// The same with AVX-VNNI (avx_vnni_q8.cpp): identical results; call only when
// cpu_has_avx_vnni().
void q8_matmul_rows_vnni(const format::PackedView& w, const Q8Activations& x, const float* eg,
                         float* y, int64_t y_stride, int64_t r0, int64_t r1);

// quantize_q8 (act_quant.h) of x [n, cols] (row stride x_stride, cols % 32
// == 0) into q [n, cols], d, e and qsum [n, cols / 32]: the same bits as the scalar
// quantizer (max is exact, x * (1 / d) the same IEEE product, rounding to
// nearest even as nearbyint, a NaN skipped by the max as std::max does).
void quantize_q8_rows(const float* x, int64_t n, int64_t x_stride, int64_t cols, int8_t* q,
                      float* d, float* e, int32_t* qsum);

// Cache-blocked GEMM on a float tile: tile [tile_rows, cols] (row stride
// `cols`), x [n, cols] (stride x_stride); y[b * y_stride + i] += tile[i] . x[b]
// over columns [k0, k1) for i < tile_rows.
void gemm_tile_accumulate(const float* tile, int64_t tile_rows, int64_t tile_stride, const float* x,
                          int64_t n, int64_t x_stride, float* y, int64_t y_stride, int64_t k0,
                          int64_t k1);
// The same with a bf16 tile (uint16_t bits, widened exactly in the loads): the
// same bits in y as the float tile of the same values.
void gemm_tile_accumulate(const uint16_t* tile, int64_t tile_rows, int64_t tile_stride,
                          const float* x, int64_t n, int64_t x_stride, float* y, int64_t y_stride,
                          int64_t k0, int64_t k1);

float dot(const float* a, const float* b, int64_t n);

}  // namespace qwenqat::engine::avx2
