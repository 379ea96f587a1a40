// The sampler's pass over the vocabulary (inference/sampler.cpp): the largest
// logit with a finiteness check, and the weights exp((logit - max) / T) with
// their sum, in a scalar form and an AVX2 form that give the same bits, so a
// seed draws the same tokens on every CPU and with either kernel set.
#pragma once

#include <cstdint>

#include "inference/kernels/packed_matmul.h"

namespace qwenqat::engine {

// exp(x) by the operations of avx2::math::exp8 (avx2_math.h: Cody-Waite
// reduction, Cephes' polynomial by fused multiply-adds, 2^n by the exponent
// bits), one lane at a time: the same bits as exp8 for every finite x >= -87.3
// (tested), within 2 ulp of std::exp; 0 below -87.3, where exp underflows
// past the normal floats. Needs no AVX2 (std::fma: a libm call here; the
// kScalar exp_weights runs it with the FMA instruction where the CPU has it).
float exp_portable(float x);

// The quotients below this give weight 0 (exp_portable).
constexpr float kExpWeightFloor = -87.3f;

// The largest of x[0, n) into *mx (n >= 1); false, *mx unspecified, when any
// x[i] is a NaN or an infinity.
bool max_if_finite(const float* x, int64_t n, float* mx, KernelIsa isa);

// w[i] = exp_portable((x[i] - mx) / t) for i < n (t > 0, every x[i] <= mx and
// finite), and their sum in double: w[i] added, in order, to partial sum
// i % 8, the eight combined as ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)).
// The same bits for kScalar and kAvx2. Thread-safe on distinct w.
double exp_weights(const float* x, int64_t n, float mx, float t, float* w, KernelIsa isa);

}  // namespace qwenqat::engine
