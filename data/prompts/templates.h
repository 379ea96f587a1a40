// Named prompt templates: the one place where chat formats are spelled out.
//   r1    DeepSeek-R1 distills: <｜begin▁of▁sentence｜><｜User｜>{question}\nPlease
//         reason step by step, and put your final answer within \boxed{}.
//         <｜Assistant｜><think>\n ; targets are "{reasoning}\n</think>\n\n...
//         \boxed{N}" ended by <｜end▁of▁sentence｜>.
//   qwen  ChatML for Qwen2/2.5 instruct models: <|im_start|>user\n...<|im_end|>\n
//         <|im_start|>assistant\n ; targets end with <|im_end|>.
//   plain base models: "Question: {question}\nAnswer:" ; targets are
//         " {reasoning}\n#### N" ended by the tokenizer's EOS token if any.
// Templates are immutable constants; all functions are thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/tokenizer.h"

namespace qwenqat::data {

struct PromptTemplate {
  std::string name;
  std::string prompt_prefix;  // before the question
  std::string prompt_suffix;  // after the question (ends where generation starts)
  std::string end_of_turn;    // appended to targets; empty: the tokenizer's EOS content
  std::vector<std::string> required_tokens;  // must be single tokens of the tokenizer

  // prompt_prefix + question + prompt_suffix.
  std::string render_prompt(std::string_view question) const;
  // The completion in this template's answer style for a worked solution
  // `reasoning` (free text, no final-answer line) and final answer `answer`,
  // ended by end_of_turn (or `eos_text` when end_of_turn is empty).
  std::string render_target(std::string_view reasoning, std::string_view answer,
                            std::string_view eos_text) const;
};

// Names of all templates ("r1", "qwen", "plain").
std::vector<std::string> template_names();
// The template called `name`; throws qwenqat::Error listing the names if unknown.
const PromptTemplate& get_template(std::string_view name);
// r1 if the tokenizer has <｜User｜>, qwen if it has <|im_start|>, else plain.
std::string default_template_name(const Tokenizer& tokenizer);
// Throws naming the template, the missing token and the alternatives if a
// required token is not a single token of `tokenizer`.
void check_template_tokens(const PromptTemplate& t, const Tokenizer& tokenizer);
// The text that ends a completion for this template and tokenizer.
std::string end_of_turn_text(const PromptTemplate& t, const Tokenizer& tokenizer);

}  // namespace qwenqat::data
