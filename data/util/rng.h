// A portable, seeded pseudo-random generator (splitmix64) and the helpers built
// on it (uniform integers, Fisher-Yates shuffle). Unlike std::shuffle and
// std::uniform_int_distribution, whose algorithms are implementation-defined,
// these give the same sequence on every machine, compiler and standard library,
// so data splits and shuffles written down by one run are reproducible by any
// other. Not thread-safe: one generator per thread.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace qwenqat {

// splitmix64 (Steele, Lea, Flood 2014): 64-bit state, full period 2^64.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform integer in [0, n) for n >= 1, by rejection (no modulo bias).
  uint64_t below(uint64_t n) {
    if (n <= 1) return 0;
    const uint64_t limit = ~0ull - (~0ull % n);  // largest multiple of n, exclusive
    uint64_t x;
    do {
      x = next();
    } while (x >= limit);
    return x % n;
  }

  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Fisher-Yates shuffle driven by SplitMix64: for i = n-1 down to 1, swap
// v[i] with v[below(i + 1)]. Deterministic for a given seed and size.
template <class T>
void portable_shuffle(std::vector<T>& v, SplitMix64& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.below(i));
    std::swap(v[i - 1], v[j]);
  }
}

}  // namespace qwenqat
