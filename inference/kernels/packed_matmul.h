// Products of float32 activations with packed quantized weights
// (format::PackedView: int4/int8 and other widths, per-group or per-channel,
// symmetric or asymmetric), in two implementations selected at run time:
//   * kScalar: the reference. Each row is dequantized with
//     format::dequantize_row and dotted with x in a plain sequential loop.
//   * kAvx2: AVX2/FMA/F16C kernels (kernels/avx2_kernels.cpp, the
//     multi-vector GEMV in avx2_multi_gemv.cpp). Dequantized tiles are
//     bit-identical to the reference; dot products differ from it only by
//     float summation order.
// The opt-in int8-activation products are in kernels/act_quant.h.
// The ISA is chosen once from the CPU features; the environment variable
// QWENQAT_ENGINE_KERNELS=scalar (or set_kernel_isa) forces the reference.
#pragma once

#include <cstdint>
#include <string>

#include "export/format/packed_tensor.h"

namespace qwenqat::engine {

enum class KernelIsa { kScalar, kAvx2 };

const char* isa_name(KernelIsa isa);
// True when this CPU has AVX2, FMA and F16C.
bool cpu_has_avx2();
// True when it also has AVX-VNNI (vpdpbusd on 256-bit vectors) and
// QWENQAT_ENGINE_VNNI is not "0": the kAvx2 int8-activation products then use
// it (the same results bit for bit, fewer instructions).
bool cpu_has_avx_vnni();
// True when it has AVX-512 F/BW/VL/DQ and QWENQAT_ENGINE_AVX512 is not "0":
// the kAvx2 single-vector GEMV then uses 16-lane vectors
// (kernels/avx512_kernels.h; float sums in another order than AVX2's).
bool cpu_has_avx512();
// cpu_has_avx512() and AVX-512 VNNI: the kAvx2 int8-activation products then
// use the AVX-512 kernel for the layers it supports (the same integer sums,
// float sums in another order).
bool cpu_has_avx512_vnni();
// cpu_has_avx512() and AMX-TILE / AMX-INT8 with the kernel's permission to
// use the tile state (arch_prctl, asked once), unless QWENQAT_ENGINE_AMX is
// "0": the kAvx2 int8-activation products of kAmxMinBatch or more sequences
// then run on AMX tiles (act_quant.h).
bool cpu_has_amx();
// The ISA the engine uses: kAvx2 when supported, unless QWENQAT_ENGINE_KERNELS
// is "scalar" or set_kernel_isa() chose otherwise. Thread-safe to read.
KernelIsa active_isa();
// Forces an ISA (tests, --kernels); throws qwenqat::Error if kAvx2 is asked
// for on a CPU without it. Not thread-safe against concurrent matmuls.
void set_kernel_isa(KernelIsa isa);
// Parses "auto" | "scalar" | "avx2" (flag value `what` names the flag).
KernelIsa parse_isa(const std::string& s, const std::string& what);

// Number of weight rows per work chunk of the matmuls. Chunk boundaries depend
// only on this constant, so a result never depends on the thread count.
constexpr int64_t kRowsPerChunk = 64;
// Largest batch handled by the multi-vector GEMV (larger: the tiled GEMM).
constexpr int64_t kMaxMultiVector = 16;

// Dequantizes rows [r0, r1) of w into out[(r1 - r0) * w.cols] (row-major).
// Bit-identical to format::dequantize_row for every ISA.
void dequantize_rows(const format::PackedView& w, int64_t r0, int64_t r1, float* out,
                     KernelIsa isa);

// y[b * y_stride + r] = sum_c w[r, c] * x[b * x_stride + c] for b in [0, n),
// r in [r0, r1). x: [n, w.cols] float32; y: [n, >= w.rows] float32; only the
// columns [r0, r1) of y are written. With kAvx2, n == 1 uses the GEMV kernel,
// 2 <= n <= kMaxMultiVector the multi-vector GEMV (each packed chunk unpacked
// once into registers for all n rows), larger n the cache-blocked GEMM (each
// weight tile dequantized once for all n rows).
// Thread-safe: concurrent calls on disjoint row ranges are fine.
void packed_matmul_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                        float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa);

// The cache-blocked GEMM path of packed_matmul_rows on its own, for any n
// (benchmarks compare it with the GEMVs); requires isa == kAvx2.
void tiled_matmul_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                       float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa);

// The same product for a float32 weight matrix w: [rows, cols] row-major.
void float_matmul_rows(const float* w, int64_t cols, const float* x, int64_t n, int64_t x_stride,
                       float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa);
// The same for a bf16 weight matrix (uint16_t bits, [rows, cols] row-major):
// the same bits in y as float_matmul_rows on the float32 values of w, for
// either isa, with half the bytes read.
void bf16_matmul_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, int64_t x_stride,
                      float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa);

// Dot product of two float vectors of length n (AVX2 or sequential scalar).
float dot(const float* a, const float* b, int64_t n, KernelIsa isa);

}  // namespace qwenqat::engine
