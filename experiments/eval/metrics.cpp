// Implementation of metrics.h.
#include "experiments/eval/metrics.h"

#include <algorithm>
#include <cmath>

#include "data/util/check.h"

namespace qwenqat::experiments {

Interval wilson_interval(double successes, double n, double z) {
  QWENQAT_CHECK(n >= 0 && successes >= 0 && successes <= n,
                "wilson_interval: need 0 <= successes <= n, got successes ", successes, ", n ",
                n);
  if (n == 0) return {0.0, 1.0};
  const double p = successes / n;
  const double z2 = z * z;
  const double denom = 1.0 + z2 / n;
  const double center = (p + z2 / (2.0 * n)) / denom;
  const double half = z / denom * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

Proportion proportion_with_ci(double successes, double n) {
  Proportion p;
  p.successes = successes;
  p.n = n;
  p.value = n > 0 ? successes / n : 0.0;
  p.ci95 = wilson_interval(successes, n);
  return p;
}

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  QWENQAT_CHECK(n >= 1 && c >= 0 && c <= n, "pass_at_k: need 0 <= correct <= samples, got ", c,
                " correct of ", n, " samples");
  QWENQAT_CHECK(k >= 1 && k <= n, "pass_at_k: k must be in [1, samples=", n, "], got ", k);
  if (n - c < k) return 1.0;
  double fail_all = 1.0;  // C(n-c, k) / C(n, k)
  for (int64_t i = n - c + 1; i <= n; ++i) fail_all *= 1.0 - double(k) / double(i);
  return 1.0 - fail_all;
}

double mean_pass_at_1(const std::vector<std::vector<bool>>& correct) {
  QWENQAT_CHECK(!correct.empty(), "mean_pass_at_1: no problems");
  double sum = 0.0;
  for (size_t p = 0; p < correct.size(); ++p) {
    QWENQAT_CHECK(!correct[p].empty(), "mean_pass_at_1: problem ", p, " has no samples");
    int64_t c = std::count(correct[p].begin(), correct[p].end(), true);
    sum += double(c) / double(correct[p].size());
  }
  return sum / double(correct.size());
}

std::optional<std::string> majority_vote(const std::vector<std::string>& answers,
                                         const AnswerEqual& equal) {
  struct Group {
    size_t first;
    int64_t count;
  };
  std::vector<Group> groups;  // in order of first occurrence
  for (size_t i = 0; i < answers.size(); ++i) {
    if (answers[i].empty()) continue;
    bool placed = false;
    for (auto& g : groups) {
      if (equal(answers[g.first], answers[i])) {
        ++g.count;
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({i, 1});
  }
  if (groups.empty()) return std::nullopt;
  const Group* best = &groups[0];
  for (const auto& g : groups) {
    if (g.count > best->count) best = &g;  // strict: earlier group wins ties
  }
  return answers[best->first];
}

double perplexity(double sum_nll, int64_t tokens) {
  QWENQAT_CHECK(tokens > 0, "perplexity: no scored tokens");
  QWENQAT_CHECK(sum_nll >= 0 && std::isfinite(sum_nll),
                "perplexity: summed NLL must be finite and >= 0, got ", sum_nll);
  return std::exp(sum_nll / double(tokens));
}

namespace {

// log sum exp of a logit row in double; checks finiteness.
double log_sum_exp(std::span<const float> logits, const char* what) {
  QWENQAT_CHECK(!logits.empty(), what, ": empty logit row");
  double mx = -INFINITY;
  for (float v : logits) {
    QWENQAT_CHECK(std::isfinite(v), what, ": logit row holds a non-finite value (", v,
                  "); the model produced NaN/inf");
    mx = std::max(mx, double(v));
  }
  double s = 0.0;
  for (float v : logits) s += std::exp(double(v) - mx);
  return mx + std::log(s);
}

}  // namespace

double token_nll(std::span<const float> logits, int64_t target) {
  QWENQAT_CHECK(target >= 0 && target < int64_t(logits.size()), "token_nll: target id ", target,
                " outside the vocabulary of ", logits.size(), " logits");
  return log_sum_exp(logits, "token_nll") - double(logits[size_t(target)]);
}

double kl_divergence(std::span<const float> ref_logits, std::span<const float> q_logits) {
  QWENQAT_CHECK(ref_logits.size() == q_logits.size(), "kl_divergence: reference row has ",
                ref_logits.size(), " logits but the quantized row has ", q_logits.size(),
                " (models with different vocabularies cannot be compared)");
  const double lse_ref = log_sum_exp(ref_logits, "kl_divergence (reference)");
  const double lse_q = log_sum_exp(q_logits, "kl_divergence (quantized)");
  double kl = 0.0;
  for (size_t i = 0; i < ref_logits.size(); ++i) {
    const double lp = double(ref_logits[i]) - lse_ref;
    const double lq = double(q_logits[i]) - lse_q;
    kl += std::exp(lp) * (lp - lq);
  }
  return std::max(0.0, kl);
}

int64_t argmax(std::span<const float> logits) {
  QWENQAT_CHECK(!logits.empty(), "argmax: empty logit row");
  int64_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[size_t(best)]) best = int64_t(i);
  }
  return best;
}

double percentile_sorted(const std::vector<double>& sorted, double fraction) {
  QWENQAT_CHECK(!sorted.empty(), "percentile of an empty list");
  QWENQAT_CHECK(fraction >= 0 && fraction <= 1, "percentile fraction must be in [0, 1], got ",
                fraction);
  const double rank = fraction * double(sorted.size() - 1);
  const size_t lo = size_t(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double t = rank - double(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * t;
}

KlStats summarize_kl(std::vector<double> values) {
  KlStats s;
  s.count = int64_t(values.size());
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  double sum = 0.0;
  for (double v : values) sum += v;
  s.mean = sum / double(values.size());
  if (values.size() > 1) {
    double ss = 0.0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    const double var = ss / double(values.size() - 1);
    s.mean_stderr = std::sqrt(var / double(values.size()));
  }
  s.median = percentile_sorted(values, 0.5);
  s.p99 = percentile_sorted(values, 0.99);
  s.max = values.back();
  return s;
}

}  // namespace qwenqat::experiments
