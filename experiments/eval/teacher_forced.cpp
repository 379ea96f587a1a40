// Implementation of teacher_forced.h.
#include "experiments/eval/teacher_forced.h"

#include <cstdio>

#include "data/util/check.h"
#include "data/util/progress.h"

namespace qwenqat::experiments {

void TeacherForcedAccumulator::add(const TeacherForcedSequence& seq,
                                   std::span<const float> q_logits,
                                   std::span<const float> ref_logits, int64_t vocab) {
  const int64_t n = int64_t(seq.ids.size());
  const std::string what = "teacher-forced sequence \"" + seq.id + "\"";
  QWENQAT_CHECK(vocab >= 1, what, ": vocabulary size must be >= 1");
  QWENQAT_CHECK(seq.score_from >= 1 && seq.score_from < n, what, ": score_from must be in [1, ",
                n, ") for ", n, " tokens, got ", seq.score_from,
                " (a sequence needs at least one scored token after its context)");
  QWENQAT_CHECK(int64_t(q_logits.size()) == n * vocab, what, ": the model returned ",
                q_logits.size(), " logits, expected ", n, " x ", vocab);
  const bool with_ref = !ref_logits.empty();
  QWENQAT_CHECK(has_ref_ == -1 || has_ref_ == int(with_ref), what,
                ": every sequence must be scored with a reference or every one without");
  has_ref_ = int(with_ref);
  if (with_ref) {
    QWENQAT_CHECK(int64_t(ref_logits.size()) == n * vocab, what, ": the reference returned ",
                  ref_logits.size(), " logits, expected ", n, " x ", vocab);
  }
  for (int64_t t = seq.score_from; t < n; ++t) {
    const int32_t target = seq.ids[size_t(t)];
    QWENQAT_CHECK(target >= 0 && target < vocab, what, ": token ", t, " has id ", target,
                  " outside the vocabulary of ", vocab);
    auto q_row = q_logits.subspan(size_t((t - 1) * vocab), size_t(vocab));
    nll_ += token_nll(q_row, target);
    if (with_ref) {
      auto r_row = ref_logits.subspan(size_t((t - 1) * vocab), size_t(vocab));
      ref_nll_ += token_nll(r_row, target);
      kl_.push_back(kl_divergence(r_row, q_row));
      top1_same_ += top1_agrees(r_row, q_row) ? 1 : 0;
    }
    ++tokens_;
  }
  ++sequences_;
}

double TeacherForcedAccumulator::perplexity() const { return experiments::perplexity(nll_, tokens_); }

double TeacherForcedAccumulator::reference_perplexity() const {
  QWENQAT_CHECK(has_reference(), "reference perplexity needs a reference model");
  return experiments::perplexity(ref_nll_, tokens_);
}

KlStats TeacherForcedAccumulator::kl_stats() const {
  QWENQAT_CHECK(has_reference(), "KL divergence needs a reference model");
  return summarize_kl(kl_);
}

Proportion TeacherForcedAccumulator::top1_agreement() const {
  QWENQAT_CHECK(has_reference(), "top-1 agreement needs a reference model");
  return proportion_with_ci(double(top1_same_), double(tokens_));
}

Json TeacherForcedAccumulator::to_json() const {
  Json j{{"sequences", sequences_}, {"tokens", tokens_}, {"nll_sum", nll_}};
  if (tokens_ > 0) j["perplexity"] = perplexity();
  if (has_reference() && tokens_ > 0) {
    const KlStats k = kl_stats();
    const Proportion top1 = top1_agreement();
    j["reference_perplexity"] = reference_perplexity();
    j["kl"] = Json{{"mean", k.mean}, {"mean_stderr", k.mean_stderr}, {"median", k.median},
                   {"p99", k.p99},   {"max", k.max},                 {"count", k.count}};
    j["top1_agreement"] = Json{
        {"value", top1.value}, {"ci95_low", top1.ci95.low}, {"ci95_high", top1.ci95.high}};
  }
  return j;
}

TeacherForcedAccumulator run_teacher_forced(const std::vector<TeacherForcedSequence>& sequences,
                                            LogitsSource& model, LogitsSource* reference,
                                            bool progress) {
  const int64_t vocab = model.vocab_size();
  if (reference != nullptr) {
    QWENQAT_CHECK(reference->vocab_size() == vocab, "teacher-forced eval: the model has ", vocab,
                  " vocabulary rows but the reference has ", reference->vocab_size(),
                  "; compare models of the same vocabulary");
  }
  TeacherForcedAccumulator acc;
  Progress bar("teacher-forced", int64_t(sequences.size()), "seq", progress);
  for (const auto& seq : sequences) {
    QWENQAT_CHECK(!seq.ids.empty(), "teacher-forced sequence \"", seq.id, "\" is empty");
    const std::vector<float> q = model.logits(seq.ids);
    std::vector<float> r;
    if (reference != nullptr) r = reference->logits(seq.ids);
    acc.add(seq, q, r, vocab);
    char extra[64];
    std::snprintf(extra, sizeof extra, "ppl %.3f", acc.perplexity());
    bar.advance(1, extra);
  }
  bar.finish();
  return acc;
}

}  // namespace qwenqat::experiments
