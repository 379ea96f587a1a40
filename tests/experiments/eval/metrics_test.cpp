// Tests of experiments/eval/metrics: every expected value is worked out by
// hand in the comments (not computed with the functions under test).
#include "experiments/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "data/util/check.h"

namespace qwenqat::experiments {
namespace {

const AnswerEqual kExact = [](const std::string& a, const std::string& b) { return a == b; };

TEST(Metrics, WilsonIntervalEightOfTen) {
  // p = 0.8, n = 10, z = 1.96: z^2 = 3.8416, denom = 1 + 0.38416 = 1.38416,
  // center = (0.8 + 0.19208) / 1.38416 = 0.716738,
  // half = 1.96 / 1.38416 * sqrt(0.016 + 0.009604) = 1.416022 * 0.160012 = 0.226580.
  Interval ci = wilson_interval(8, 10, 1.96);
  EXPECT_NEAR(ci.low, 0.490157, 2e-6);
  EXPECT_NEAR(ci.high, 0.943319, 2e-6);
}

TEST(Metrics, WilsonIntervalEdges) {
  // 0 of 10: center = 0.19208 / 1.38416 = 0.138771, half = 1.416022 * sqrt(0.009604) =
  // 1.416022 * 0.098000 = 0.138770 -> [0, 0.277541].
  Interval zero = wilson_interval(0, 10, 1.96);
  EXPECT_NEAR(zero.low, 0.0, 1e-6);
  EXPECT_NEAR(zero.high, 0.277541, 2e-6);
  Interval none = wilson_interval(0, 0);
  EXPECT_EQ(none.low, 0.0);
  EXPECT_EQ(none.high, 1.0);
  EXPECT_THROW(wilson_interval(11, 10), Error);
  EXPECT_THROW(wilson_interval(-1, 10), Error);
  Proportion p = proportion_with_ci(8, 10);
  EXPECT_DOUBLE_EQ(p.value, 0.8);
  // The default z (1.959964) is slightly narrower than z = 1.96.
  EXPECT_GT(p.ci95.low, 0.490157);
  EXPECT_LT(p.ci95.high, 0.943319);
}

TEST(Metrics, PassAtK) {
  // n = 5, c = 2: pass@1 = 2/5; pass@2 = 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7;
  // pass@3 = 1 - C(3,3)/C(5,3) = 1 - 1/10 = 0.9; pass@4 = 1 (n - c < k).
  EXPECT_NEAR(pass_at_k(5, 2, 1), 0.4, 1e-12);
  EXPECT_NEAR(pass_at_k(5, 2, 2), 0.7, 1e-12);
  EXPECT_NEAR(pass_at_k(5, 2, 3), 0.9, 1e-12);
  EXPECT_EQ(pass_at_k(5, 2, 4), 1.0);
  EXPECT_EQ(pass_at_k(5, 0, 3), 0.0);
  EXPECT_EQ(pass_at_k(5, 5, 1), 1.0);
  // n = 10, c = 3, k = 5: 1 - C(7,5)/C(10,5) = 1 - 21/252 = 0.916667.
  EXPECT_NEAR(pass_at_k(10, 3, 5), 1.0 - 21.0 / 252.0, 1e-12);
  EXPECT_THROW(pass_at_k(5, 6, 1), Error);
  EXPECT_THROW(pass_at_k(5, 2, 0), Error);
  EXPECT_THROW(pass_at_k(5, 2, 6), Error);
}

TEST(Metrics, MeanPassAt1) {
  // Problem A: 3 of 4 correct (0.75), problem B: 1 of 4 (0.25), C: 0 of 2 -> mean 1/3.
  std::vector<std::vector<bool>> c = {
      {true, true, false, true}, {false, false, true, false}, {false, false}};
  EXPECT_NEAR(mean_pass_at_1(c), (0.75 + 0.25 + 0.0) / 3.0, 1e-12);
  EXPECT_THROW(mean_pass_at_1({}), Error);
  EXPECT_THROW(mean_pass_at_1({{true}, {}}), Error);
}

TEST(Metrics, MajorityVote) {
  EXPECT_EQ(majority_vote({"3", "5", "5", "3", "5"}, kExact).value(), "5");
  // Tie 2-2: "7" occurs first, so it wins.
  EXPECT_EQ(majority_vote({"7", "2", "2", "7"}, kExact).value(), "7");
  EXPECT_EQ(majority_vote({"2", "7", "7", "2"}, kExact).value(), "2");
  // Empty answers do not vote, even when they are the most common.
  EXPECT_EQ(majority_vote({"", "", "", "4"}, kExact).value(), "4");
  EXPECT_FALSE(majority_vote({"", ""}, kExact).has_value());
  EXPECT_FALSE(majority_vote({}, kExact).has_value());
  // With a numeric equality, "18" and "18.0" are one group of 2 beating "20".
  AnswerEqual numeric = [](const std::string& a, const std::string& b) {
    return std::stod(a) == std::stod(b);
  };
  EXPECT_EQ(majority_vote({"20", "18.0", "18"}, numeric).value(), "18.0");
}

TEST(Metrics, Perplexity) {
  // Three tokens each with probability 1/2: NLL sum = 3 ln 2, perplexity 2.
  EXPECT_NEAR(perplexity(3 * std::log(2.0), 3), 2.0, 1e-12);
  EXPECT_NEAR(perplexity(0.0, 5), 1.0, 1e-12);
  EXPECT_THROW(perplexity(1.0, 0), Error);
  EXPECT_THROW(perplexity(-1.0, 3), Error);
}

TEST(Metrics, TokenNll) {
  // logits [ln 1, ln 3]: p = [1/4, 3/4]; -ln(1/4) = 1.386294, -ln(3/4) = 0.287682.
  std::vector<float> l = {0.0f, float(std::log(3.0))};
  EXPECT_NEAR(token_nll(l, 0), 1.3862944, 1e-6);
  EXPECT_NEAR(token_nll(l, 1), 0.2876821, 1e-6);
  // Shifting all logits by 100 changes nothing (log-sum-exp subtracts the max).
  std::vector<float> s = {100.0f, 100.0f + float(std::log(3.0))};
  EXPECT_NEAR(token_nll(s, 0), 1.3862944, 1e-4);
  EXPECT_THROW(token_nll(l, 2), Error);
  EXPECT_THROW(token_nll(l, -1), Error);
  std::vector<float> bad = {0.0f, NAN};
  EXPECT_THROW(token_nll(bad, 0), Error);
}

TEST(Metrics, KlDivergence) {
  // P = softmax([0, ln 3]) = [0.25, 0.75], Q = softmax([0, 0]) = [0.5, 0.5]:
  // KL(P||Q) = 0.25 ln(0.5) + 0.75 ln(1.5) = -0.173287 + 0.304099 = 0.130812.
  std::vector<float> p = {0.0f, float(std::log(3.0))};
  std::vector<float> q = {0.0f, 0.0f};
  EXPECT_NEAR(kl_divergence(p, q), 0.1308120, 1e-6);
  // KL(Q||P) = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.346574 - 0.202733 = 0.143841.
  EXPECT_NEAR(kl_divergence(q, p), 0.1438410, 1e-6);
  EXPECT_EQ(kl_divergence(p, p), 0.0);
  // Huge logits stay finite: P = [1, 0] numerically, Q uniform over 2 -> ln 2.
  std::vector<float> big = {1e4f, -1e4f};
  EXPECT_NEAR(kl_divergence(big, q), std::log(2.0), 1e-9);
  std::vector<float> three = {0, 0, 0};
  EXPECT_THROW(kl_divergence(p, three), Error);
  std::vector<float> inf = {INFINITY, 0.0f};
  EXPECT_THROW(kl_divergence(inf, q), Error);
}

TEST(Metrics, Top1) {
  std::vector<float> a = {0.1f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(argmax(a), 1);  // first of the tie
  std::vector<float> b = {0.0f, 1.0f, 0.5f, 0.9f};
  std::vector<float> c = {3.0f, 1.0f, 0.5f, 0.9f};
  EXPECT_TRUE(top1_agrees(a, b));
  EXPECT_FALSE(top1_agrees(a, c));
}

TEST(Metrics, KlSummary) {
  // Values sorted: 0.1 0.2 0.3 0.4 1.0 -> mean 2.0/5 = 0.4, median 0.3,
  // p99 at rank 0.99*4 = 3.96: 0.4 + 0.96 * (1.0 - 0.4) = 0.976, max 1.0.
  // Sample variance: (0.09 + 0.04 + 0.01 + 0 + 0.36) / 4 = 0.125; stderr = sqrt(0.125/5) = 0.158114.
  KlStats s = summarize_kl({0.4, 0.1, 1.0, 0.3, 0.2});
  EXPECT_EQ(s.count, 5);
  EXPECT_NEAR(s.mean, 0.4, 1e-12);
  EXPECT_NEAR(s.median, 0.3, 1e-12);
  EXPECT_NEAR(s.p99, 0.976, 1e-12);
  EXPECT_NEAR(s.max, 1.0, 1e-12);
  EXPECT_NEAR(s.mean_stderr, 0.1581139, 1e-6);
  // Even count: median is the mean of the two middle values.
  EXPECT_NEAR(summarize_kl({4, 1, 3, 2}).median, 2.5, 1e-12);
  EXPECT_EQ(summarize_kl({}).count, 0);
}

}  // namespace
}  // namespace qwenqat::experiments
