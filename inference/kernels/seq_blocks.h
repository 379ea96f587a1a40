// Loop helpers of the int8-activation kernels (avx2_q8_impl.h, avx512_q8.cpp):
// how a call's sequences are cut into cache blocks and register passes. The
// cuts never change a result: each (weight row, sequence) output is computed
// by the same operations whatever pass or block holds it.
#pragma once

#include <algorithm>
#include <cstdint>

namespace qwenqat::engine::kernels {

// Activation bytes per sequence block: a block stays in L2 while each weight
// row of the call passes over it (without blocks a 256-token prefill re-read
// all its activations, 2.3 MB for an 8960-wide input, from L3 for every row).
constexpr int64_t kSeqBlockBytes = 128 << 10;

// The most sequences over_seq_blocks gives one block: about block_bytes /
// cols, a multiple of max_pass, at least max_pass.
inline int64_t seq_block_size(int64_t cols, int64_t max_pass,
                              int64_t block_bytes = kSeqBlockBytes) {
  return std::max<int64_t>(max_pass, block_bytes / cols / max_pass * max_pass);
}

// Calls f(s0, s1) for consecutive blocks [s0, s1) of the sequences [0, n),
// each of at most seq_block_size(cols, max_pass, block_bytes) sequences.
template <class F>
void over_seq_blocks(int64_t n, int64_t cols, int64_t max_pass, F&& f,
                     int64_t block_bytes = kSeqBlockBytes) {
  const int64_t per = seq_block_size(cols, max_pass, block_bytes);
  const int64_t count = (n + per - 1) / per;
  for (int64_t i = 0; i < count; ++i) f(n * i / count, n * (i + 1) / count);
}

// Calls f(b0, nb) for passes of nb <= max_pass sequences covering [s0, s1),
// as even as possible.
template <class F>
void over_passes(int64_t s0, int64_t s1, int64_t max_pass, F&& f) {
  const int64_t n = s1 - s0, passes = (n + max_pass - 1) / max_pass;
  for (int64_t p = 0, b0 = s0; p < passes; ++p) {
    const int64_t b1 = s0 + n * (p + 1) / passes;
    f(b0, b1 - b0);
    b0 = b1;
  }
}

}  // namespace qwenqat::engine::kernels
