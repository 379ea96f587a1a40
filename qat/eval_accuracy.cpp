// Implementation of eval_accuracy.h.
#include "qat/eval_accuracy.h"

#include <algorithm>

#include "data/gsm8k/answer.h"
#include "data/prompts/templates.h"

namespace qwenqat::qat {

std::vector<AccuracyProblem> accuracy_problems(const std::vector<data::Example>& examples,
                                               int64_t limit) {
  std::vector<AccuracyProblem> out;
  for (const auto& e : examples) {
    if (int64_t(out.size()) >= limit) break;
    if (e.reference_answer.empty()) continue;
    const auto first = std::find(e.loss_mask.begin(), e.loss_mask.end(), uint8_t(1));
    const auto p = size_t(first - e.loss_mask.begin());
    if (p == 0) continue;
    out.push_back({std::vector<int32_t>(e.ids.begin(), e.ids.begin() + p), e.reference_answer});
  }
  return out;
}

std::vector<int32_t> completion_stop_ids(const data::Tokenizer& tok,
                                         const std::string& template_name) {
  std::vector<int32_t> ids;
  if (const auto eos = tok.eos_id()) ids.push_back(*eos);
  const auto eot = tok.encode(data::end_of_turn_text(data::get_template(template_name), tok));
  if (eot.size() == 1 && std::find(ids.begin(), ids.end(), eot[0]) == ids.end()) {
    ids.push_back(eot[0]);
  }
  return ids;
}

AccuracyResult greedy_exact_match(models::Qwen2ForCausalLMImpl& model,
                                  const std::vector<AccuracyProblem>& problems,
                                  const data::Tokenizer& tok,
                                  const std::vector<int32_t>& stop_ids, int64_t max_new_tokens) {
  TORCH_CHECK(max_new_tokens >= 1, "--eval-max-new-tokens must be >= 1, got ", max_new_tokens);
  torch::NoGradGuard no_grad;
  const auto device = model.options().device;
  const int64_t context = model.config().max_position_embeddings;
  AccuracyResult r;
  int64_t new_tokens = 0;
  for (const auto& p : problems) {
    const auto P = int64_t(p.prompt.size());
    if (P >= context) continue;  // cannot generate a single token
    const int64_t budget = std::min(max_new_tokens, context - P);
    auto cache = model.make_cache(1, P + budget);
    std::vector<int64_t> ids(p.prompt.begin(), p.prompt.end());
    auto input = torch::tensor(ids, torch::kInt64).view({1, P}).to(device);
    auto logits = model.forward(input, torch::arange(P, torch::kInt64).view({1, P}).to(device),
                                {}, &cache);  // [1, P, V]
    std::vector<int32_t> generated;
    bool finished = false;
    for (int64_t i = 0; i < budget; ++i) {
      const auto next = int32_t(logits[0][-1].argmax().item<int64_t>());
      if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
        finished = true;
        break;
      }
      generated.push_back(next);
      if (i + 1 == budget) break;
      logits = model.forward(torch::full({1, 1}, int64_t(next), torch::kInt64).to(device),
                             torch::full({1, 1}, cache.length, torch::kInt64).to(device), {},
                             &cache);  // [1, 1, V]
    }
    const auto score = data::score_answer(tok.decode(generated, true), p.reference_answer);
    ++r.n;
    r.correct += score.correct;
    r.finished += finished;
    new_tokens += int64_t(generated.size());
  }
  r.mean_new_tokens = r.n ? double(new_tokens) / double(r.n) : 0.0;
  return r;
}

}  // namespace qwenqat::qat
