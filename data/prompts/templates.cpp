// Implementation of templates.h: the template table.
#include "data/prompts/templates.h"

#include "data/util/check.h"

namespace qwenqat::data {
namespace {

constexpr std::string_view kInstruction =
    "Please reason step by step, and put your final answer within \\boxed{}.";

const std::vector<PromptTemplate>& all_templates() {
  static const std::vector<PromptTemplate> templates = {
      {"r1",
       "<｜begin▁of▁sentence｜><｜User｜>",
       "\n" + std::string(kInstruction) + "<｜Assistant｜><think>\n",
       "<｜end▁of▁sentence｜>",
       {"<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<think>", "</think>",
        "<｜end▁of▁sentence｜>"}},
      {"qwen",
       "<|im_start|>user\n",
       "\n" + std::string(kInstruction) + "<|im_end|>\n<|im_start|>assistant\n",
       "<|im_end|>",
       {"<|im_start|>", "<|im_end|>"}},
      {"plain", "Question: ", "\nAnswer:", "", {}},
  };
  return templates;
}

}  // namespace

std::string PromptTemplate::render_prompt(std::string_view question) const {
  std::string s;
  s.reserve(prompt_prefix.size() + question.size() + prompt_suffix.size());
  s.append(prompt_prefix).append(question).append(prompt_suffix);
  return s;
}

std::string PromptTemplate::render_target(std::string_view reasoning, std::string_view answer,
                                          std::string_view eos_text) const {
  std::string s;
  if (name == "r1") {
    // The prompt already opened <think>\n.
    s.append(reasoning).append("\n</think>\n\nThe final answer is $\\boxed{").append(answer);
    s.append("}$.");
  } else if (name == "qwen") {
    s.append(reasoning).append("\nThe final answer is $\\boxed{").append(answer).append("}$.");
  } else {
    s.append(" ").append(reasoning).append("\n#### ").append(answer);
  }
  s.append(end_of_turn.empty() ? eos_text : std::string_view(end_of_turn));
  return s;
}

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  for (const auto& t : all_templates()) names.push_back(t.name);
  return names;
}

const PromptTemplate& get_template(std::string_view name) {
  std::string known;
  for (const auto& t : all_templates()) {
    if (t.name == name) return t;
    known += (known.empty() ? "" : ", ") + t.name;
  }
  fail("unknown prompt template \"", name, "\" (known templates: ", known, ")");
}

std::string default_template_name(const Tokenizer& tokenizer) {
  if (tokenizer.token_to_id("<｜User｜>")) return "r1";
  if (tokenizer.token_to_id("<|im_start|>")) return "qwen";
  return "plain";
}

void check_template_tokens(const PromptTemplate& t, const Tokenizer& tokenizer) {
  for (const auto& tok : t.required_tokens) {
    QWENQAT_CHECK(tokenizer.token_to_id(tok).has_value(), "prompt template \"", t.name,
                  "\" needs the token ", tok, " which tokenizer ", tokenizer.origin(),
                  " does not have; choose the template that matches the model (default for "
                  "this tokenizer: ",
                  default_template_name(tokenizer), ")");
  }
}

std::string end_of_turn_text(const PromptTemplate& t, const Tokenizer& tokenizer) {
  if (!t.end_of_turn.empty()) return t.end_of_turn;
  if (const auto eos = tokenizer.eos_id()) return tokenizer.id_to_token(*eos);
  return "";
}

}  // namespace qwenqat::data
