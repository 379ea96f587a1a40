// Sampling and the portable PRNG.
#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/util/check.h"

namespace qwenqat::engine {
namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Rng::uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }

void SamplingOptions::validate() const {
  QWENQAT_CHECK(std::isfinite(temperature) && temperature >= 0.0f,
                "--temperature must be >= 0 (0 = greedy), got ", temperature);
  QWENQAT_CHECK(top_p > 0.0f && top_p <= 1.0f, "--top-p must be in (0, 1], got ", top_p);
  QWENQAT_CHECK(top_k >= 0, "--top-k must be >= 0 (0 = off), got ", top_k);
}

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

int32_t sample(const float* logits, int64_t n, const SamplingOptions& opt, Rng& rng) {
  if (opt.temperature <= 0.0f) return argmax(logits, n);
  // Candidates sorted by logit (descending, lower id first on ties).
  std::vector<int32_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  int64_t keep = n;
  if (opt.top_k > 0 && opt.top_k < n) {
    keep = opt.top_k;
    std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), better);
  } else {
    std::sort(idx.begin(), idx.end(), better);
  }
  const float mx = logits[idx[0]];
  std::vector<double> p(static_cast<size_t>(keep));
  double sum = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    p[i] = std::exp(static_cast<double>((logits[idx[i]] - mx) / opt.temperature));
    sum += p[i];
  }
  if (opt.top_p < 1.0f) {
    double cum = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= opt.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    sum = 0.0;
    for (int64_t i = 0; i < keep; ++i) sum += p[i];
  }
  const double r = static_cast<double>(rng.uniform()) * sum;
  double acc = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (r < acc) return idx[i];
  }
  return idx[keep - 1];
}

}  // namespace qwenqat::engine
