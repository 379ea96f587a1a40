// Element-wise operations of the forward pass with an AVX2 form: the SwiGLU
// gate and the fp16 <-> float conversions of KV cache rows; the widening of
// bf16 weight rows.
#pragma once

#include <cstdint>

#include "inference/kernels/packed_matmul.h"

namespace qwenqat::engine {

// g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i] for i < n.
// kScalar: std::exp. kAvx2: a vectorized exp (Cephes' expf polynomial, within
// 2 ulp of std::exp, kSwigluTolerance relative on the result), the same
// operations for every element whatever n or its position (the tail goes
// through a padded vector), so results never depend on how a caller splits
// the array. Thread-safe on disjoint ranges.
void swiglu(float* g, const float* u, int64_t n, KernelIsa isa);

// Relative difference allowed between the two forms of swiglu (tests).
constexpr float kSwigluTolerance = 1e-6f;

// out[i] = the float value of the fp16 bits h[i] for i < n, exactly
// (F16C where the CPU has it, else fp16_to_f32 of data/util/half.h).
void fp16_to_f32_row(const uint16_t* h, float* out, int64_t n);

// out[i] = the float value of the bf16 bits b[i] for i < n, exactly
// (bf16_to_f32 of data/util/half.h). Thread-safe.
void bf16_to_f32_row(const uint16_t* b, float* out, int64_t n);

// out[i] = f32_to_fp16(x[i]) of data/util/half.h (round to nearest even), the
// same bits for every float (F16C where the CPU has it). Thread-safe.
void f32_to_fp16_row(const float* x, uint16_t* out, int64_t n);

}  // namespace qwenqat::engine
