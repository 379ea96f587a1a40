// Internal to attention.cpp and attention_avx512.cpp (contract: attention.h):
// the softmax pass both vector forms share, and the AVX-512 form.
#pragma once

#include <cstdint>

#include "inference/kernels/attention.h"

namespace qwenqat::engine::attention_impl {

// Each of the `heads` rows of w (ctx scores, row stride ctx) replaced by its
// softmax, in place: the maximum, exp(w - max) 8 at a time with the AVX2
// exp, their sum, the quotients. Needs AVX2/FMA. A row's values depend only
// on that row.
void softmax_rows(float* w, int64_t heads, int64_t ctx);

// attend's AVX-512 form (d a multiple of 16; needs cpu_has_avx512()):
// scores as register tiles of 4 heads x 4 positions (each key row loaded
// once for 4 heads), softmax_rows, then out as tiles of 4 heads x 64 columns
// (each value row loaded once for 4 heads); the same per-entry operations
// whatever the tile, the number of heads or ctx.
void attend_avx512(const float* q, int64_t heads, const KvRows& kv, int64_t ctx, int64_t d,
                   float scale, float* w, float* out);

}  // namespace qwenqat::engine::attention_impl
