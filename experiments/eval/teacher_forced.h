// Teacher-forced metrics that need no generation: perplexity of reference
// texts, and against a full-precision reference model the per-token
// KL(P_ref || P_q), top-1 token agreement and the reference's own perplexity
// (the quantities of llama.cpp's `llama-perplexity --kl-divergence`). Models
// are abstract LogitsSources (the engine and the LibTorch model implement
// them later).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "experiments/eval/metrics.h"

namespace qwenqat::experiments {

// Full-sequence logits of a causal language model. Implementations need not
// be thread-safe (called from one thread).
class LogitsSource {
 public:
  virtual ~LogitsSource() = default;
  virtual int64_t vocab_size() const = 0;
  // ids: [n] token ids (n >= 1). Returns [n, vocab_size()] float32 logits,
  // row-major; row t is the distribution of the token at position t+1.
  virtual std::vector<float> logits(const std::vector<int32_t>& ids) = 0;
};

// One scored text: tokens ids[score_from..n-1] are predicted (each from all
// tokens before it); the tokens before score_from (e.g. the prompt) are
// context only. 1 <= score_from < n.
struct TeacherForcedSequence {
  std::string id;
  std::vector<int32_t> ids;
  int64_t score_from = 1;
};

// Accumulates the metrics sequence by sequence. Not thread-safe.
class TeacherForcedAccumulator {
 public:
  // q_logits / ref_logits: [ids.size(), vocab] as returned by LogitsSource;
  // ref_logits may be empty (no reference). Every call must agree on whether a
  // reference is given. Throws qwenqat::Error naming the sequence on shape
  // mismatches, bad score_from or out-of-vocabulary ids.
  void add(const TeacherForcedSequence& seq, std::span<const float> q_logits,
           std::span<const float> ref_logits, int64_t vocab);

  int64_t sequences() const { return sequences_; }
  int64_t tokens() const { return tokens_; }
  double nll_sum() const { return nll_; }
  bool has_reference() const { return has_ref_ == 1; }
  double perplexity() const;            // of the evaluated model
  double reference_perplexity() const;  // requires a reference
  KlStats kl_stats() const;             // requires a reference
  Proportion top1_agreement() const;    // requires a reference; Wilson CI over tokens
  Json to_json() const;

 private:
  int64_t sequences_ = 0, tokens_ = 0, top1_same_ = 0;
  int has_ref_ = -1;  // -1 unknown, 0 no, 1 yes
  double nll_ = 0, ref_nll_ = 0;
  std::vector<double> kl_;
};

// Runs `model` (and `reference` if not null) over every sequence and returns
// the accumulated metrics. Shows a progress bar on stderr if `progress`.
// Throws if the two models' vocabulary sizes differ.
TeacherForcedAccumulator run_teacher_forced(const std::vector<TeacherForcedSequence>& sequences,
                                            LogitsSource& model, LogitsSource* reference,
                                            bool progress = true);

}  // namespace qwenqat::experiments
