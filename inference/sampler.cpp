// Sampling and the portable PRNG.
#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "data/util/check.h"
#include "data/util/half.h"
#include "inference/kernels/sample_weights.h"

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
  const uint32_t k = (0x3f800000u - f32_bits(w)) >> 20;
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

// Ties broken by the lower id: a strict total order of the tokens, most
// likely first.
struct Better {
  const float* logits;
  bool operator()(int32_t a, int32_t b) const {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  }
};

// cand = the ids of the k (1 <= k < n) most likely tokens, in increasing
// order (so the sums over them do not depend on the standard library).
void top_k_ids(const float* logits, int64_t n, int64_t k, std::vector<int32_t>& cand) {
  const Better better{logits};
  if (k <= n / 16) {  // a heap of the k best, its top the worst of them
    cand.resize(static_cast<size_t>(k));
    std::iota(cand.begin(), cand.end(), 0);
    std::make_heap(cand.begin(), cand.end(), better);
    for (int64_t i = k; i < n; ++i) {
      if (!better(static_cast<int32_t>(i), cand.front())) continue;
      std::pop_heap(cand.begin(), cand.end(), better);
      cand.back() = static_cast<int32_t>(i);
      std::push_heap(cand.begin(), cand.end(), better);
    }
  } else {
    cand.resize(static_cast<size_t>(n));
    std::iota(cand.begin(), cand.end(), 0);
    std::nth_element(cand.begin(), cand.begin() + (k - 1), cand.end(), better);
    cand.resize(static_cast<size_t>(k));
  }
  std::sort(cand.begin(), cand.end());
}

// The nucleus of the weights w[0, m) (candidate i; token(i) its id) with
// total `total`: the candidates most likely first up to the first whose
// cumulative mass reaches top_p * total, into `nucleus`. The buckets above
// the one where the mass crosses that are in it whole (taken in id order);
// only the crossing bucket is sorted, to find where it ends. Only the buckets
// up to that of tau = (1 - top_p) / 2 * total / m can hold the crossing (the
// candidates below tau weigh less than (1 - top_p) / 2 of the total
// together), so only their candidates are kept and summed: the same masses,
// crossing and nucleus as over every bucket (which is the fallback should
// rounding ever carry the crossing past them). A bucket's mass is summed in
// four interleaved parts (candidate i into part i % 4, in id order; one
// chain waited on its own stores), added as (p0 + p1) + (p2 + p3).
template <class Token>
void nucleus_of(const float* w, int64_t m, double total, float top_p, const Better& better,
                Token token, std::vector<int32_t>& nucleus) {
  const double target = static_cast<double>(top_p) * total;
  const double tau = 0.5 * (1.0 - static_cast<double>(top_p)) * total / static_cast<double>(m);
  int last = tau > 0.0 ? bucket_of(static_cast<float>(tau)) : kBuckets - 1;
  thread_local std::vector<int32_t> kept, edge;
  int edge_bucket = 0;
  double cum = 0.0;  // the mass of the buckets before edge_bucket
  for (;;) {
    kept.clear();
    double part[4][kBuckets] = {};
    for (int64_t i = 0; i < m; ++i) {
      const int b = bucket_of(w[i]);
      if (b > last) continue;
      kept.push_back(static_cast<int32_t>(i));
      part[i & 3][b] += w[i];
    }
    edge_bucket = 0;
    cum = 0.0;
    for (;; ++edge_bucket) {
      const int b = edge_bucket;
      const double mass = (part[0][b] + part[1][b]) + (part[2][b] + part[3][b]);
      if (b == kBuckets - 1 || cum + mass >= target) break;
      cum += mass;
    }
    if (edge_bucket <= last) break;
    last = kBuckets - 1;
  }
  nucleus.clear();
  edge.clear();
  for (int32_t i : kept) {
    if (bucket_of(w[i]) < edge_bucket) nucleus.push_back(i);
    if (bucket_of(w[i]) == edge_bucket) edge.push_back(i);
  }
  std::sort(edge.begin(), edge.end(),
            [&](int32_t a, int32_t b) { return better(token(a), token(b)); });
  for (int32_t i : edge) {
    nucleus.push_back(i);
    cum += w[i];
    if (cum >= target) break;
  }
}

}  // namespace

int32_t sample(const float* logits, int64_t n, const SamplingOptions& opt, Rng& rng,
               KernelIsa isa) {
  // The largest logit, and a clear error for a NaN or an infinity (they break
  // the comparisons std::nth_element and std::sort need, and a greedy pick
  // among them would be meaningless).
  float mx = 0.0f;
  QWENQAT_CHECK(max_if_finite(logits, n, &mx, isa),
                "sampling: the logits hold a NaN or an infinity");
  if (opt.temperature <= 0.0f)  // greedy: the first largest, as argmax
    return static_cast<int32_t>(std::find(logits, logits + n, mx) - logits);
  // Candidates: every token (candidate i is token i), or the top_k most
  // likely (cand: their ids in increasing order) with their logits in x.
  thread_local std::vector<int32_t> cand, nucleus;
  thread_local std::vector<float> x, w;
  const bool top_k = opt.top_k > 0 && opt.top_k < n;
  const float* xs = logits;
  if (top_k) {
    top_k_ids(logits, n, opt.top_k, cand);
    x.resize(cand.size());
    for (size_t i = 0; i < cand.size(); ++i) x[i] = logits[cand[i]];
    xs = x.data();
  }
  const int64_t m = top_k ? opt.top_k : n;
  const auto token = [&](int64_t i) { return static_cast<int32_t>(top_k ? cand[i] : i); };
  // w = exp((logit - max) / temperature) in float, in [0, 1] (0 where exp
  // underflows), the total in double (exp_weights: the same bits on every CPU).
  w.resize(static_cast<size_t>(m));
  const double total = exp_weights(xs, m, mx, opt.temperature, w.data(), isa);
  if (opt.top_p >= 1.0f) {
    const double r = static_cast<double>(rng.uniform()) * total;
    return token(draw(m, r, [&](int64_t i) { return w[i]; }));
  }
  nucleus_of(w.data(), m, total, opt.top_p, Better{logits}, token, nucleus);
  double sum = 0.0;
  for (int32_t i : nucleus) sum += w[i];
  const int64_t k =
      draw(static_cast<int64_t>(nucleus.size()), static_cast<double>(rng.uniform()) * sum,
           [&](int64_t i) { return w[nucleus[i]]; });
  return token(nucleus[k]);
}

}  // namespace qwenqat::engine
