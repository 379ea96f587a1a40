// Evaluation metrics, torch-free: accuracy with a Wilson 95% confidence
// interval, pass@k (mean pass@1 over K samples, the unbiased pass@k estimator),
// majority vote (maj@K / cons@K), perplexity, and the teacher-forced
// comparisons of a quantized model against a full-precision reference that
// llama.cpp's `llama-perplexity --kl-divergence` reports (KL(P_ref || P_q) per
// token, top-1 agreement, KL summary statistics). Definitions: docs/EVALUATION.md.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qwenqat::experiments {

// z of a two-sided 95% normal interval.
inline constexpr double kZ95 = 1.959963984540054;

struct Interval {
  double low = 0.0, high = 1.0;
};

// Wilson score interval of a proportion: successes out of n trials (both may be
// fractional, e.g. mean pass@1 times the number of problems). n == 0 gives the
// uninformative [0, 1]. Throws qwenqat::Error if successes < 0, n < 0 or
// successes > n.
Interval wilson_interval(double successes, double n, double z = kZ95);

// A proportion with its Wilson 95% interval. `value` is 0 when n == 0.
struct Proportion {
  double successes = 0.0;
  double n = 0.0;
  double value = 0.0;
  Interval ci95;
};
Proportion proportion_with_ci(double successes, double n);

// Unbiased pass@k estimator (Chen et al. 2021) for a problem with n samples of
// which c are correct: 1 - C(n-c, k) / C(n, k), evaluated as the stable product
// 1 - prod_{i=n-c+1..n} (1 - k/i). Requires 0 <= c <= n and 1 <= k <= n
// (throws qwenqat::Error otherwise).
double pass_at_k(int64_t n, int64_t c, int64_t k);

// pass@1 averaged over problems: mean over problems of (correct samples / samples).
// correct[p] holds the per-sample correctness of problem p; a problem with no
// samples throws (the caller must not average over missing data).
double mean_pass_at_1(const std::vector<std::vector<bool>>& correct);

// Equality of two extracted answers (e.g. numeric equality after normalization).
using AnswerEqual = std::function<bool(const std::string&, const std::string&)>;

// Majority vote over the extracted answers of one problem's K samples.
// Empty answers (nothing extracted) do not vote. Answers are grouped with
// `equal` (each answer joins the group of the first earlier answer it equals);
// the largest group wins, and among equally large groups the one whose first
// member occurs earliest wins. Returns the winning group's first answer, or
// nullopt if no sample produced an answer.
std::optional<std::string> majority_vote(const std::vector<std::string>& answers,
                                         const AnswerEqual& equal);

// exp(sum_nll / tokens): perplexity from the summed natural-log negative
// log-likelihood of `tokens` predicted tokens. Throws if tokens <= 0 or sum_nll < 0.
double perplexity(double sum_nll, int64_t tokens);

// -log softmax(logits)[target] in double (log-sum-exp with the max subtracted).
// Throws if target is out of range or a logit is not finite.
double token_nll(std::span<const float> logits, int64_t target);

// KL(P_ref || P_q) = sum_i p_ref(i) * (log p_ref(i) - log p_q(i)) of the softmax
// distributions of two logit rows over the same vocabulary, computed with
// log-softmax in double. Result >= 0 (tiny negative rounding clamped to 0).
// Throws if the rows differ in length, are empty, or hold non-finite values.
double kl_divergence(std::span<const float> ref_logits, std::span<const float> q_logits);

// Index of the largest logit (the first one on ties). Throws if empty.
int64_t argmax(std::span<const float> logits);
inline bool top1_agrees(std::span<const float> ref_logits, std::span<const float> q_logits) {
  return argmax(ref_logits) == argmax(q_logits);
}

// Summary of per-token KL values like llama.cpp's report: mean with its
// standard error, median, 99th percentile, maximum. Percentiles interpolate
// linearly between order statistics at rank f*(n-1) (numpy's default), so the
// median of an even count is the mean of the two middle values.
struct KlStats {
  int64_t count = 0;
  double mean = 0.0, mean_stderr = 0.0, median = 0.0, p99 = 0.0, max = 0.0;
};
KlStats summarize_kl(std::vector<double> values);

// Linear-interpolation percentile of `sorted` (ascending), fraction in [0, 1].
double percentile_sorted(const std::vector<double>& sorted, double fraction);

}  // namespace qwenqat::experiments
