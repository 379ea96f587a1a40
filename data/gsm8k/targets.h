// Training targets: a GSM8K problem rendered with a prompt template into a
// {prompt, completion} pair in the model's answer style (for r1: the worked
// solution, calculator annotations removed, as reasoning inside <think> ...
// </think>, then the final answer as \boxed{N}), and tokenization of pairs
// into Examples whose loss mask covers the completion only. Prompt and
// completion are tokenized separately, exactly as at inference time (the
// prompt is encoded alone and the model continues it). Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "data/batching.h"
#include "data/gsm8k/gsm8k.h"
#include "data/prompts/templates.h"
#include "data/tokenizer/tokenizer.h"

namespace qwenqat::data {

// The prompt and completion for `p`; `eos_text` ends completions of
// templates without their own end-of-turn (see end_of_turn_text()).
PromptCompletion gsm8k_prompt_completion(const Gsm8kProblem& p, const PromptTemplate& t,
                                         std::string_view eos_text);

// Ids of a prompt: BOS is prepended when the tokenizer's config asks for it
// and the prompt does not already start with it.
std::vector<int32_t> encode_prompt(const Tokenizer& tok, std::string_view prompt);

// ids = encode_prompt(prompt) + encode(completion); loss_mask is 1 exactly on
// the completion's tokens. Throws if the completion encodes to no tokens.
Example tokenize_example(const Tokenizer& tok, const PromptCompletion& pc);
std::vector<Example> tokenize_examples(const Tokenizer& tok,
                                       const std::vector<PromptCompletion>& pcs);

}  // namespace qwenqat::data
