// Sampling: the PRNG is portable (fixed values), greedy/top-k/top-p keep the
// right candidates, and the empirical distribution matches softmax.
#include "inference/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "data/util/check.h"

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
