// Internal to attention.cpp and attention_avx512.cpp (contract: attention.h):
// the softmax pass both vector forms share, and the AVX-512 form.
#pragma once

#include <cstdint>

#include "inference/kernels/attention.h"
#include "inference/kernels/prefetch.h"

namespace qwenqat::engine::attention_impl {

// Each of the `heads` rows of w (row stride ctx) replaced by the softmax of
// its first visible[h] scores (all ctx without visible), in place, and 0
// past them: the maximum, exp(w - max) 8 at a time with the AVX2 exp, their
// sum, the quotients. Needs AVX2/FMA. A row's values depend only on its
// visible scores.
void softmax_rows(float* w, int64_t heads, int64_t ctx, const int64_t* visible);

// Positions per block of both vector forms' score and value passes: a
// block's key (value) rows, 128-256 KB at head_dim 128, stay in L2 while
// every head of the group reads them, instead of coming from L3 or DRAM once
// per head. A multiple of 16, so the position tiles fall where they would
// without it.
constexpr int64_t kPosBlock = 512;

// Calls f(pb, pe) for the position blocks [pb, pe) covering [0, ctx).
template <class F>
inline void over_pos_blocks(int64_t ctx, F&& f) {
  for (int64_t pb = 0; pb < ctx; pb += kPosBlock)
    f(pb, ctx < pb + kPosBlock ? ctx : pb + kPosBlock);
}

// Positions ahead that the AVX-512 form prefetches the key and value rows
// of: a decode step reads the fp16 cache from L3 or DRAM (57 MB per step at
// a 2000-token context for the 1.5B shapes), and the first head tile of a
// group waited on every row. Paired per-step timing of decode after a
// 2000-token prompt on Zen 5 (AVX-512 form): 16 ahead 0.92-0.96x time, 4 or
// 8 0.95-0.97x, 32 0.95-0.99x, 96 0.99x. The AVX2 form, which loads a key
// vector per FMA, gained nothing from it (0.98-1.01x) and does not prefetch.
constexpr int64_t kPrefetchPositions = 16;

// Prefetches (T0) `bytes` bytes from element `col` of the rows of positions
// [p, p + n), rows `stride` elements apart from base. Addresses are formed
// as integers: rows past the context point past the cache, harmlessly (a
// prefetch does not fault).
template <class T>
inline void prefetch_rows(const T* base, int64_t stride, int64_t p, int n, int64_t col,
                          int64_t bytes) {
  const uintptr_t b = reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(col) * sizeof(T);
  for (int j = 0; j < n; ++j)
    kernels::prefetch_range(b + static_cast<uintptr_t>((p + j) * stride) * sizeof(T),
                            static_cast<uintptr_t>(bytes));
}

// attend's AVX-512 form (d a multiple of 16; needs cpu_has_avx512()):
// scores as register tiles of 4 heads x 4 positions (each key row loaded
// once for 4 heads), softmax_rows, then out as tiles of 4 heads x 64 columns
// (each value row loaded once for 4 heads); the same per-entry operations
// whatever the tile, the number of heads or ctx. visible: as attend_masked
// (nullptr: every head sees all ctx positions).
void attend_avx512(const float* q, int64_t heads, const int64_t* visible, const KvRows& kv,
                   int64_t ctx, int64_t d, float scale, float* w, float* out);

}  // namespace qwenqat::engine::attention_impl
