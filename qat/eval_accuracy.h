// Exact-match GSM8K accuracy of the model being trained, for the trainer's
// held-out evaluation (`qwenqat train --eval-accuracy N`): greedy decoding
// with the LibTorch model (quantizers as they are, i.e. the fake-quantized
// model that will be exported), one problem at a time with the KV cache, and
// the data library's answer extraction and scoring. Meant to be cheap: a few
// dozen problems and a bounded number of new tokens.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/batching.h"
#include "data/tokenizer/tokenizer.h"
#include "models/qwen2_model.h"

namespace qwenqat::qat {

struct AccuracyProblem {
  std::vector<int32_t> prompt;   // [P] token ids (the example's tokens before its loss mask)
  std::string reference_answer;  // GSM8K final answer ("18")
};

struct AccuracyResult {
  int64_t n = 0, correct = 0;
  int64_t finished = 0;          // ended with an EOS id within the budget
  double mean_new_tokens = 0.0;
  double accuracy() const { return n ? double(correct) / double(n) : 0.0; }
};

// The first `limit` examples of `examples` that carry a reference answer, as
// prompts (limit <= 0: none).
std::vector<AccuracyProblem> accuracy_problems(const std::vector<data::Example>& examples,
                                               int64_t limit);

// The ids that end a completion: the tokenizer's EOS and the single-token
// end-of-turn text of `template_name` (when there is one).
std::vector<int32_t> completion_stop_ids(const data::Tokenizer& tok,
                                         const std::string& template_name);

// Greedy decoding of every problem (at most max_new_tokens >= 1 new tokens,
// and never past max_position_embeddings) and exact-match scoring. Runs
// under NoGradGuard; the model's train/eval mode is left unchanged. Not
// thread-safe.
AccuracyResult greedy_exact_match(models::Qwen2ForCausalLMImpl& model,
                                  const std::vector<AccuracyProblem>& problems,
                                  const data::Tokenizer& tok,
                                  const std::vector<int32_t>& stop_ids, int64_t max_new_tokens);

}  // namespace qwenqat::qat
