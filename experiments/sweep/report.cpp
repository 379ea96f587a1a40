// Implementation of report.h.
#include "experiments/sweep/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "data/util/text_format.h"

namespace qwenqat::experiments {

namespace {

int method_rank(const std::string& m) {
  if (m == "fp") return 0;
  if (m == "ptq") return 1;
  if (m == "qat") return 2;
  return 3;
}

std::string scheme_label(const SweepRow& r) {
  if (r.point.method == "fp") return "full precision";
  std::string s = r.point.scheme.name();
  if (r.point.mixed_precision != "none") s += " + mp:" + r.point.mixed_precision;
  return s;
}

std::string method_label(const SweepRow& r) {
  const auto& p = r.point;
  if (p.method == "fp") return "-";
  if (p.method == "ptq") return "PTQ (RTN)";
  std::string s = p.method == "qat" ? "QAT" : "QAT+KD";
  return s + " (" + std::to_string(p.train_steps) + " steps, seed " + std::to_string(p.seed) + ")";
}

std::optional<double> metric(const SweepRow& r, const std::string& name) {
  if (name == "accuracy") {
    return r.metrics.accuracy ? std::optional<double>(r.metrics.accuracy->value) : std::nullopt;
  }
  if (name == "perplexity") return r.metrics.perplexity;
  if (r.point.method == "fp" && !r.metrics.kl_mean) return 0.0;  // KL of fp to itself
  return r.metrics.kl_mean;
}

}  // namespace

std::optional<Recovery> recovery_of(const SweepRow& row, const std::vector<SweepRow>& rows) {
  if (row.point.method != "qat" && row.point.method != "qat_kd") return std::nullopt;
  const SweepRow* ptq = nullptr;
  const SweepRow* fp = nullptr;
  for (const auto& r : rows) {
    if (r.point.method == "fp" && !fp) fp = &r;
    if (r.point.method == "ptq" && !ptq && r.point.scheme == row.point.scheme &&
        r.point.mixed_precision == row.point.mixed_precision) {
      ptq = &r;
    }
  }
  if (!ptq || !fp) return std::nullopt;
  for (const char* name : {"accuracy", "kl", "perplexity"}) {
    auto q = metric(row, name), p = metric(*ptq, name), f = metric(*fp, name);
    if (!q || !p || !f) continue;
    const double gap = *f - *p;
    if (std::abs(gap) <= 1e-12) return std::nullopt;
    // PTQ already within KL noise of fp: a ratio of noise, not a recovery.
    if (std::string(name) == "kl" && std::abs(gap) < kMinKlGap) return std::nullopt;
    return Recovery{(*q - *p) / gap, name};
  }
  return std::nullopt;
}

std::vector<SweepRow> table_order(const std::vector<SweepRow>& rows) {
  std::map<std::string, size_t> first_scheme;
  for (const auto& r : rows) first_scheme.try_emplace(scheme_label(r), first_scheme.size());
  std::vector<SweepRow> out = rows;
  std::stable_sort(out.begin(), out.end(), [&](const SweepRow& a, const SweepRow& b) {
    const bool fa = a.point.method == "fp", fb = b.point.method == "fp";
    if (fa != fb) return fa;
    const size_t sa = first_scheme[scheme_label(a)], sb = first_scheme[scheme_label(b)];
    if (sa != sb) return sa < sb;
    const int ma = method_rank(a.point.method), mb = method_rank(b.point.method);
    if (ma != mb) return ma < mb;
    if (a.point.train_steps != b.point.train_steps)
      return a.point.train_steps < b.point.train_steps;
    return a.point.seed < b.point.seed;
  });
  return out;
}

std::string markdown_table(const std::vector<SweepRow>& rows) {
  std::string md =
      "| Scheme | Method | Size (MB) | Bits/weight | Accuracy (95% CI) | Perplexity | KL | "
      "Top-1 | Recovery |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : table_order(rows)) {
    const auto& m = r.metrics;
    std::string acc = "-";
    if (m.accuracy) {
      acc = str_printf("%.1f%%", 100 * m.accuracy->value) +
            str_printf(" (%.1f", 100 * m.accuracy->ci95.low) +
            str_printf("-%.1f)", 100 * m.accuracy->ci95.high);
    }
    std::string rec = "-";
    if (auto rv = recovery_of(r, rows)) {
      rec = str_printf("%.0f%%", 100 * rv->value) + " (" +
            (rv->metric == "accuracy"     ? "acc"
             : rv->metric == "perplexity" ? "ppl"
                                          : "KL") +
            ")";
    }
    md += "| " + scheme_label(r) + " | " + method_label(r) + " | " +
          str_printf("%.2f", double(m.size_bytes) / 1e6) + " | " +
          str_printf("%.2f", m.bits_per_weight) + " | " + acc + " | " +
          (m.perplexity ? str_printf("%.3f", *m.perplexity) : "-") + " | " +
          // KL spans orders of magnitude (1e-5 .. 1): three significant digits.
          (m.kl_mean ? str_printf("%.3g", *m.kl_mean) : "-") + " | " +
          (m.top1_agreement ? str_printf("%.1f%%", 100 * *m.top1_agreement) : "-") + " | " + rec +
          " |\n";
  }
  return md;
}

Json table_json(const std::vector<SweepRow>& rows) {
  Json out = Json::array();
  for (const auto& r : table_order(rows)) {
    Json j = row_to_json(r);
    j.erase("extra");
    j["size_mb"] = double(r.metrics.size_bytes) / 1e6;
    if (auto rv = recovery_of(r, rows)) {
      j["recovery"] = rv->value;
      j["recovery_metric"] = rv->metric;
    } else {
      j["recovery"] = nullptr;
      j["recovery_metric"] = nullptr;
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace qwenqat::experiments
