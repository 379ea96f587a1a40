// Scaled dot-product attention of one query row against one head's cached
// keys and values (the inner loop of Model::attention), with a scalar
// reference form and a vector form (AVX2/FMA, or AVX-512 where the CPU has
// it) picked by KernelIsa.
#pragma once

#include <cstdint>

#include "inference/kernels/packed_matmul.h"

namespace qwenqat::engine {

// One head's cached keys and values (KvCache::head): position p's row of
// head_dim elements at k + p * stride and v + p * stride, float32 (k, v) or
// fp16 (k16, v16; the other pair null).
struct KvRows {
  const float* k = nullptr;
  const float* v = nullptr;
  const uint16_t* k16 = nullptr;
  const uint16_t* v16 = nullptr;
  int64_t stride = 0;  // elements from one position's row to the next
};

// For each of the `heads` query rows q_h sharing one kv head (a GQA group):
// out_h[0, d) = sum_p softmax_p(scale * (q_h . k_p)) v_p over positions
// p < ctx. q and out [heads, d], kv rows of d elements, w scratch [heads, ctx]
// floats (the probabilities after the call), ctx >= 1; out must not alias
// the inputs. kScalar: the reference, head by head (fp16 rows converted
// exactly, dot products by `dot`, std::exp, one position after another).
// kAvx2 (d a multiple of 8; other d take the reference with the AVX2 dot):
// fp16 rows converted in registers, scores of 8 positions at a time, a
// vectorized exp (avx2_math.h) and FMAs, positions in blocks whose rows every
// head reads while they are in L2; with AVX-512 (cpu_has_avx512(), d a
// multiple of 16) register tiles of several heads and positions instead
// (attention_avx512.cpp). Each position's score, exp and weight and each
// column's sum take the same operations whatever ctx, the number of heads or
// the blocking, so a head's result depends only on its own inputs.
// Thread-safe on distinct w and out.
void attend(const float* q, int64_t heads, const KvRows& kv, int64_t ctx, int64_t d, float scale,
            float* w, float* out, KernelIsa isa);

// attend for heads that see different numbers of positions: head h attends
// to positions [0, visible[h]) (1 <= visible[h] <= ctx; w's row h is 0 past
// them after the call), with the same bits in out as attend over its own
// visible[h] positions (the positions past them take weight exactly 0, their
// value rows must be finite). For a block of consecutive prompt rows that
// share one kv head: the key and value rows are read once for the block
// instead of once per row (Model::attention).
void attend_masked(const float* q, int64_t heads, const int64_t* visible, const KvRows& kv,
                   int64_t ctx, int64_t d, float scale, float* w, float* out, KernelIsa isa);

// Relative difference allowed between the two forms' outputs, relative to the
// largest |v| (tests): summation order and the exp polynomial differ.
constexpr float kAttendTolerance = 2e-6f;

}  // namespace qwenqat::engine
