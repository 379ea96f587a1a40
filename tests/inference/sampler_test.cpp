// Sampling: the PRNG is portable (fixed values), greedy/top-k/top-p keep the
// right candidates (against a full sort of the vocabulary), and the empirical
// distribution matches softmax, inside the nucleus too.
#include "inference/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "data/util/check.h"
#include "inference/kernels/sample_weights.h"

namespace qwenqat::engine {
namespace {

TEST(Sampler, RngIsDeterministicAndPortable) {
  Rng a(0), b(0), c(1);
  const uint64_t first = a.next();
  EXPECT_EQ(first, b.next());
  EXPECT_NE(first, c.next());
  // xoshiro256** seeded by splitmix64(0): a fixed, platform-independent value.
  Rng d(0);
  EXPECT_EQ(d.next(), 0x99ec5f36cb75f2b4ull);
  for (int i = 0; i < 1000; ++i) {
    const float u = a.uniform();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
  }
}

TEST(Sampler, GreedyAndFilters) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 3.0f, 2.0f};
  Rng rng(5);
  SamplingOptions greedy;
  greedy.temperature = 0.0f;
  EXPECT_EQ(sample(logits.data(), 5, greedy, rng), 1);  // first of the ties
  SamplingOptions topk;
  topk.temperature = 1.0f;
  topk.top_p = 1.0f;
  topk.top_k = 2;
  for (int i = 0; i < 200; ++i) {
    const int32_t t = sample(logits.data(), 5, topk, rng);
    ASSERT_TRUE(t == 1 || t == 3) << t;
  }
  SamplingOptions topp;
  topp.temperature = 1.0f;
  topp.top_p = 0.5f;  // p(1) = p(3) ~ 0.39 each: the nucleus is {1, 3}
  for (int i = 0; i < 200; ++i) {
    const int32_t t = sample(logits.data(), 5, topp, rng);
    ASSERT_TRUE(t == 1 || t == 3) << t;
  }
}

// The top_k of equal logits are the lowest ids, with few candidates (a
// heap of them) and with many (a partial sort).
TEST(Sampler, TopKTiesGoToTheLowerIds) {
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 1.0f;
  for (int64_t k : {10, 600}) {
    std::vector<float> l(1000, 1.5f);
    l[700] = 2.0f;  // the best, whatever k
    o.top_k = k;
    Rng rng(3);
    std::set<int32_t> seen;
    for (int i = 0; i < 30000; ++i) seen.insert(sample(l.data(), 1000, o, rng));
    EXPECT_EQ(static_cast<int64_t>(seen.size()), k) << "top-k " << k;
    EXPECT_TRUE(seen.count(700)) << "top-k " << k;
    EXPECT_EQ(*std::prev(seen.find(700)), k - 2) << "top-k " << k;  // ids 0 .. k - 2
  }
}

TEST(Sampler, FrequenciesFollowSoftmax) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  SamplingOptions opt;
  opt.temperature = 2.0f;
  opt.top_p = 1.0f;
  Rng rng(11);
  std::map<int32_t, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[sample(logits.data(), 3, opt, rng)];
  double z = 0.0;
  for (float l : logits) z += std::exp(l / 2.0);
  for (int k = 0; k < 3; ++k) {
    const double p = std::exp(logits[k] / 2.0) / z;
    EXPECT_NEAR(count[k] / double(n), p, 0.015) << k;
  }
}

// The nucleus by the documented rule, with a full sort: candidates (all, or
// the top_k), w = exp_portable((logit - max) / T), most likely first (ties to
// the lower id) up to the first whose cumulative mass reaches top_p * total;
// with each token's renormalized probability.
std::map<int32_t, double> reference_nucleus(const std::vector<float>& l, const SamplingOptions& o) {
  std::vector<int32_t> idx(l.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(),
            [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  if (o.top_k > 0 && o.top_k < static_cast<int64_t>(idx.size())) idx.resize(o.top_k);
  const float mx = l[idx[0]];
  std::vector<float> w;
  for (int32_t i : idx) w.push_back(exp_portable((l[i] - mx) / o.temperature));
  double total = 0.0;
  for (float x : w) total += x;
  size_t keep = idx.size();
  double cum = 0.0;
  for (size_t i = 0; i < idx.size() && o.top_p < 1.0f; ++i) {
    cum += w[i];
    if (cum >= static_cast<double>(o.top_p) * total) {
      keep = i + 1;
      break;
    }
  }
  double sum = 0.0;
  for (size_t i = 0; i < keep; ++i) sum += w[i];
  std::map<int32_t, double> p;
  for (size_t i = 0; i < keep; ++i) p[idx[i]] = w[i] / sum;
  return p;
}

// Every draw inside the reference nucleus, and the frequencies of its tokens
// within 4 standard deviations (+ 1e-3) of their probabilities.
void expect_draws_follow(const std::vector<float>& l, const SamplingOptions& o, int draws,
                         const std::string& what) {
  const auto nucleus = reference_nucleus(l, o);
  Rng rng(o.seed);
  std::map<int32_t, int> count;
  for (int i = 0; i < draws; ++i) {
    const int32_t t = sample(l.data(), static_cast<int64_t>(l.size()), o, rng);
    ASSERT_TRUE(nucleus.count(t)) << what << ": token " << t << " is outside the nucleus of "
                                  << nucleus.size();
    ++count[t];
  }
  // Tokens of p >= 0.01 one by one, the others pooled (thousands of rare
  // tokens checked one by one would fail some by chance).
  double rest_p = 0.0;
  int rest_count = 0;
  const auto expect_freq = [&](double p, int c, const std::string& which) {
    const double sd = std::sqrt(std::max(0.0, p * (1 - p)) / draws);
    EXPECT_NEAR(c / double(draws), p, 4 * sd + 1e-3) << what << ": " << which;
  };
  for (const auto& [t, p] : nucleus) {
    if (p >= 0.01) {
      expect_freq(p, count[t], "token " + std::to_string(t));
    } else {
      rest_p += p;
      rest_count += count[t];
    }
  }
  expect_freq(rest_p, rest_count, "the tokens of p < 0.01");
}

// Random logits with a few likely tokens; ~1 ms per draw at the real size.
std::vector<float> peaked_logits(size_t n, std::mt19937& gen) {
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> l(n);
  for (auto& x : l) x = nd(gen);
  for (int i = 0; i < 6; ++i) l[gen() % l.size()] += 14.0f + i;
  return l;
}

TEST(Sampler, NucleusOfALargeVocabularyMatchesAFullSort) {
  std::mt19937 gen(3);
  const auto l = peaked_logits(151936, gen);  // the real vocabulary's size
  SamplingOptions o;                          // the defaults: temperature 0.6, top-p 0.95
  expect_draws_follow(l, o, 1500, "defaults");
  o.temperature = 1.5f;  // a nucleus that ends in a crowded bucket
  o.top_p = 0.9f;
  EXPECT_GT(reference_nucleus(l, o).size(), 6u);
  expect_draws_follow(l, o, 1500, "T 1.5, top-p 0.9");
  const auto small = peaked_logits(20000, gen);
  o.top_k = 4;
  expect_draws_follow(small, o, 3000, "top-k 4, top-p 0.9");
  o.top_p = 1.0f;
  expect_draws_follow(small, o, 3000, "top-k 4");
}

TEST(Sampler, FlatAndGraduatedLogitsKeepTheRightNucleus) {
  // Equal logits: the nucleus is the lower half of the ids (ties by id).
  const std::vector<float> flat(1000, 2.0f);
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 0.5f;
  EXPECT_EQ(reference_nucleus(flat, o).size(), 500u);
  expect_draws_follow(flat, o, 3000, "flat");
  // Logits falling by 0.01 per id over a range of 50: the nucleus reaches
  // past w = 1e-3 and 1e-6 of the most likely token (several widenings).
  std::vector<float> steps(5000);
  for (size_t i = 0; i < steps.size(); ++i) steps[i] = -0.01f * static_cast<float>(i);
  o.top_p = 0.999f;
  o.temperature = 0.3f;
  expect_draws_follow(steps, o, 3000, "graduated");
}

// The same tokens for a seed with either kernel set (the weights and their
// sums take the same bits), and the tokens this implementation draws for
// fixed logits and seed: a change of the sampler's arithmetic or of the
// platform's shows here.
TEST(Sampler, SameTokensWithEitherKernelSetAndAFixedSequence) {
  std::mt19937 gen(9);
  const auto l = peaked_logits(151936, gen);
  std::vector<SamplingOptions> opts(4);
  opts[1].temperature = 1.3f;
  opts[1].top_p = 0.8f;
  opts[2].top_k = 40;
  opts[3].top_p = 1.0f;
  opts[3].temperature = 2.0f;
  for (size_t k = 0; k < opts.size() && cpu_has_avx2(); ++k) {
    Rng a(100 + k), b(100 + k);
    for (int i = 0; i < 50; ++i)
      ASSERT_EQ(sample(l.data(), 151936, opts[k], a, KernelIsa::kScalar),
                sample(l.data(), 151936, opts[k], b, KernelIsa::kAvx2))
          << "options " << k << ", draw " << i;
  }
  // Logits from the portable PRNG, so the same on every platform.
  Rng src(2024);
  std::vector<float> fixed(1000);
  for (auto& x : fixed) x = 8.0f * src.uniform();
  SamplingOptions o;
  o.temperature = 1.0f;
  o.top_p = 0.9f;
  Rng rng(7);
  std::vector<int32_t> got;
  for (int i = 0; i < 12; ++i)
    got.push_back(sample(fixed.data(), 1000, o, rng, KernelIsa::kScalar));
  EXPECT_EQ(got, (std::vector<int32_t>{707, 279, 860, 994, 996, 881, 64, 114, 386, 153, 566, 731}));
}

TEST(Sampler, NanOrInfiniteLogitsAreAClearError) {
  Rng rng(1);
  for (const float temperature : {0.6f, 0.0f}) {  // sampled and greedy
    SamplingOptions o;
    o.temperature = temperature;
    for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
      std::vector<float> l(100, 0.5f);
      l[37] = bad;
      try {
        sample(l.data(), 100, o, rng);
        FAIL() << "expected an error for " << bad << " at temperature " << temperature;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
      }
    }
  }
  // Greedy picks the first largest, as argmax.
  std::vector<float> l = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f, 2.0f, 1.0f, 0.25f};
  SamplingOptions greedy;
  greedy.temperature = 0.0f;
  for (KernelIsa isa : {KernelIsa::kScalar, KernelIsa::kAvx2}) {
    if (isa == KernelIsa::kAvx2 && !cpu_has_avx2()) continue;
    EXPECT_EQ(sample(l.data(), 9, greedy, rng, isa), 1);
    EXPECT_EQ(sample(l.data(), 9, greedy, rng, isa), argmax(l.data(), 9));
  }
}

TEST(Sampler, BadOptions) {
  SamplingOptions o;
  o.temperature = -1.0f;
  EXPECT_THROW(o.validate(), Error);
  o = {};
  o.top_p = 1.5f;
  EXPECT_THROW(o.validate(), Error);
  o = {};
  o.top_k = -2;
  EXPECT_THROW(o.validate(), Error);
}

}  // namespace
}  // namespace qwenqat::engine
