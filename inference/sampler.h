// Next-token sampling: greedy, temperature, top-k and top-p (nucleus), driven
// by a portable seeded PRNG (xoshiro256** seeded through splitmix64), so a
// seed gives the same tokens on every platform and standard library.
#pragma once

#include <cstdint>
#include <vector>

#include "inference/kernels/packed_matmul.h"

namespace qwenqat::engine {

// xoshiro256**: small, fast, portable. Not thread-safe (one per sequence).
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  // Uniform in [0, 1) with 24 random bits (exact in float32).
  float uniform();

 private:
  uint64_t s_[4];
};

struct SamplingOptions {
  float temperature = 0.6f;  // <= 0: greedy (argmax)
  float top_p = 0.95f;       // (0, 1]; 1 disables
  int64_t top_k = 0;         // 0 disables
  uint64_t seed = 0;
  // Throws qwenqat::Error naming the flag when out of range.
  void validate() const;
};

// Index of the largest logit (the first one on ties).
int32_t argmax(const float* logits, int64_t n);

// Samples one token id from logits[n]. Greedy when temperature <= 0 (the
// first largest logit, as argmax).
// Otherwise: softmax(logits / temperature) restricted to the top_k most
// likely tokens, then to the smallest set whose probability reaches top_p
// (ties broken by lower id), renormalized, sampled with rng.uniform() (one
// draw per call). The weights are exp((logit - max) / temperature) in float
// by exp_portable (kernels/sample_weights.h; 0 below exp(-87.3)), summed in
// double in a fixed order, so a seed gives the same tokens with either isa
// and on every CPU. O(n) plus a sort of the tokens whose weight lies in the
// eighth of an octave where the nucleus ends, never of the vocabulary.
// Throws qwenqat::Error when the logits hold a NaN or an infinity (greedy
// too). Thread-safe (per-thread scratch).
int32_t sample(const float* logits, int64_t n, const SamplingOptions& opt, Rng& rng,
               KernelIsa isa = active_isa());

}  // namespace qwenqat::engine
