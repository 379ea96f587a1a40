// Sampling and the portable PRNG.
#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

namespace {

// Buckets of the weights w in [0, 1] by magnitude, an eighth of an octave
// each, most likely first: key(w) = (bits(1.0f) - bits(w)) >> 20, monotone
// (larger w, smaller key); w < 2^-64 (and 0) share the last bucket.
constexpr int kBuckets = 512;
inline int bucket_of(float w) {
  uint32_t b;
  std::memcpy(&b, &w, 4);
  const uint32_t k = (0x3f800000u - b) >> 20;
  return static_cast<int>(std::min<uint32_t>(k, kBuckets - 1));
}

// Index of the token drawn from weights w(0..m) by r in [0, sum w): the first
// i with r < w(0) + ... + w(i) (the last one when rounding leaves r past all).
template <class Weight>
int64_t draw(int64_t m, double r, Weight w) {
  double acc = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    acc += w(i);
    if (r < acc) return i;
  }
  return m - 1;
}

}  // namespace

int32_t sample(const float* logits, int64_t n, const SamplingOptions& opt, Rng& rng) {
  if (opt.temperature <= 0.0f) return argmax(logits, n);
  // The largest logit, and a clear error before any ordering for a NaN or an
  // infinity (they break the comparisons std::nth_element and std::sort need).
  float mx = logits[0];
  for (int64_t i = 0; i < n; ++i) {
    QWENQAT_CHECK(std::isfinite(logits[i]), "sampling: the logits hold a NaN or an infinity");
    mx = logits[i] > mx ? logits[i] : mx;
  }
  // Candidates: every token, or the top_k most likely (in no particular
  // order; ties to the lower id).
  const auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  thread_local std::vector<int32_t> cand, nucleus, edge;
  thread_local std::vector<float> w;
  cand.resize(static_cast<size_t>(n));
  std::iota(cand.begin(), cand.end(), 0);
  if (opt.top_k > 0 && opt.top_k < n) {
    std::nth_element(cand.begin(), cand.begin() + (opt.top_k - 1), cand.end(), better);
    cand.resize(static_cast<size_t>(opt.top_k));
  }
  const int64_t m = static_cast<int64_t>(cand.size());
  // w = exp((logit - max) / temperature) in float, in [0, 1] (0 where exp
  // underflows); sums in double.
  w.resize(cand.size());
  double total = 0.0;
  for (int64_t i = 0; i < m; ++i) {
    w[i] = std::exp((logits[cand[i]] - mx) / opt.temperature);
    total += w[i];
  }
  if (opt.top_p >= 1.0f) {
    const double r = static_cast<double>(rng.uniform()) * total;
    return cand[draw(m, r, [&](int64_t i) { return w[i]; })];
  }
  // The nucleus: the candidates most likely first up to the first whose
  // cumulative mass reaches top_p * total. The buckets above the one where
  // the mass crosses that are in it whole (taken in id order); only the
  // crossing bucket is sorted, to find where it ends.
  const double target = static_cast<double>(opt.top_p) * total;
  double mass[kBuckets] = {};
  for (int64_t i = 0; i < m; ++i) mass[bucket_of(w[i])] += w[i];
  int edge_bucket = 0;
  double cum = 0.0;  // the mass of the buckets before edge_bucket
  for (; edge_bucket < kBuckets - 1 && cum + mass[edge_bucket] < target; ++edge_bucket)
    cum += mass[edge_bucket];
  nucleus.clear();
  edge.clear();
  for (int64_t i = 0; i < m; ++i) {
    const int b = bucket_of(w[i]);
    if (b < edge_bucket) nucleus.push_back(static_cast<int32_t>(i));
    if (b == edge_bucket) edge.push_back(static_cast<int32_t>(i));
  }
  std::sort(edge.begin(), edge.end(),
            [&](int32_t a, int32_t b) { return better(cand[a], cand[b]); });
  for (int32_t i : edge) {
    nucleus.push_back(i);
    cum += w[i];
    if (cum >= target) break;
  }
  double sum = 0.0;
  for (int32_t i : nucleus) sum += w[i];
  const int64_t k =
      draw(static_cast<int64_t>(nucleus.size()), static_cast<double>(rng.uniform()) * sum,
           [&](int64_t i) { return w[nucleus[i]]; });
  return cand[nucleus[k]];
}

}  // namespace qwenqat::engine
