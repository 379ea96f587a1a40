// Implementation of targets.h.
#include "data/gsm8k/targets.h"

#include "data/gsm8k/answer.h"
#include "data/util/check.h"

namespace qwenqat::data {

PromptCompletion gsm8k_prompt_completion(const Gsm8kProblem& p, const PromptTemplate& t,
                                         std::string_view eos_text) {
  PromptCompletion pc;
  pc.prompt = t.render_prompt(p.question);
  // "1,600" -> "1600": the boxed answer is the plain number.
  const std::string answer = normalize_answer(p.final_answer).value_or(p.final_answer);
  pc.completion = t.render_target(solution_reasoning(p.answer), answer, eos_text);
  return pc;
}

std::vector<int32_t> encode_prompt(const Tokenizer& tok, std::string_view prompt) {
  std::vector<int32_t> ids;
  tok.encode_append(prompt, ids);
  if (tok.add_bos_token() && tok.bos_id() && (ids.empty() || ids.front() != *tok.bos_id())) {
    ids.insert(ids.begin(), *tok.bos_id());
  }
  return ids;
}

Example tokenize_example(const Tokenizer& tok, const PromptCompletion& pc) {
  Example e;
  e.ids = encode_prompt(tok, pc.prompt);
  const size_t prompt_len = e.ids.size();
  tok.encode_append(pc.completion, e.ids);
  QWENQAT_CHECK(e.ids.size() > prompt_len, "training example has an empty completion (prompt: \"",
                pc.prompt.substr(0, 60), "...\")");
  e.loss_mask.assign(e.ids.size(), 0);
  std::fill(e.loss_mask.begin() + static_cast<std::ptrdiff_t>(prompt_len), e.loss_mask.end(), 1);
  return e;
}

std::vector<Example> tokenize_examples(const Tokenizer& tok,
                                       const std::vector<PromptCompletion>& pcs) {
  std::vector<Example> out;
  out.reserve(pcs.size());
  for (const auto& pc : pcs) out.push_back(tokenize_example(tok, pc));
  return out;
}

}  // namespace qwenqat::data
