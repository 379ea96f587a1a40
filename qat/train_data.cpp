// Loading training examples for `qwenqat train` (see train_data.h).
#include "qat/train_data.h"

#include <sstream>

#include "data/gsm8k/gsm8k.h"
#include "data/gsm8k/targets.h"
#include "data/prompts/templates.h"
#include "data/tokenizer/tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"

namespace qwenqat::qat {
namespace {

// An example is usable when some token after the first carries loss (the
// first token has no predecessor to predict it from).
bool usable(const data::Example& e) {
  for (size_t i = 1; i < e.loss_mask.size(); ++i) {
    if (e.loss_mask[i]) return true;
  }
  return false;
}

std::string detect_format(const std::string& spec) {
  if (spec.empty() || spec == "embedded") return "gsm8k";
  const std::string text = read_file(spec);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j;
    try {
      j = parse_json(line, spec);
    } catch (const Error& e) {
      fail(spec, ": cannot detect the data format from the first line (", e.what(),
           "); pass --data-format");
    }
    if (j.is_object() && j.contains("question")) return "gsm8k";
    if (j.is_object() && j.contains("prompt")) return "prompt-completion";
    if (j.is_object() && j.contains("ids")) return "tokens";
    fail(spec, ": the first line has none of \"question\" (GSM8K), \"prompt\" "
         "(prompt/completion) or \"ids\" (tokens); pass --data-format");
  }
  fail(spec, ": the data file is empty (no usable examples)");
}

std::vector<data::Example> load_examples(const std::string& spec, const std::string& format,
                                         const DataOptions& o, int64_t vocab_size) {
  if (format == "tokens") {
    return parse_token_jsonl(read_file(spec), spec, vocab_size, o.skip_bad_lines);
  }
  QWENQAT_CHECK(!o.tokenizer.empty(), "data format ", format,
                " needs a tokenizer (the model directory has no tokenizer.json; pass --tokenizer)");
  const auto tok = data::Tokenizer::load(o.tokenizer);
  const std::string tname = o.template_name.empty() ? data::default_template_name(tok)
                                                    : o.template_name;
  std::vector<data::PromptCompletion> pcs;
  std::vector<std::string> answers;  // GSM8K final answers, one per pcs entry
  if (format == "gsm8k") {
    const auto& t = data::get_template(tname);
    data::check_template_tokens(t, tok);
    const std::string eos = data::end_of_turn_text(t, tok);
    for (const auto& p : data::load_gsm8k(spec, o.skip_bad_lines)) {
      pcs.push_back(data::gsm8k_prompt_completion(p, t, eos));
      answers.push_back(p.final_answer);
    }
  } else if (format == "prompt-completion") {
    pcs = data::read_prompt_completion_jsonl(spec, o.skip_bad_lines);
  } else {
    fail("unknown --data-format '", format, "' (use auto, gsm8k, prompt-completion or tokens)");
  }
  auto examples = data::tokenize_examples(tok, pcs);
  for (size_t i = 0; i < answers.size() && i < examples.size(); ++i) {
    examples[i].reference_answer = answers[i];
  }
  for (const auto& e : examples) {
    for (int32_t id : e.ids) {
      QWENQAT_CHECK(id >= 0 && id < vocab_size, spec, ": token id ", id,
                    " is outside the model's vocabulary of ", vocab_size,
                    " (tokenizer and model do not match)");
    }
  }
  return examples;
}

std::vector<data::Example> keep_usable(std::vector<data::Example> in) {
  std::vector<data::Example> out;
  for (auto& e : in) {
    if (usable(e)) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace

std::vector<data::Example> parse_token_jsonl(const std::string& text, const std::string& origin,
                                             int64_t vocab_size, bool skip_bad_lines) {
  std::vector<data::Example> out;
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = origin + ":" + std::to_string(line_no);
    try {
      const Json j = parse_json(line, where);
      QWENQAT_CHECK(j.is_object() && j.contains("ids") && j["ids"].is_array(), where,
                    ": expected {\"ids\": [...], \"loss_mask\": [...]}");
      data::Example e;
      for (const auto& v : j["ids"]) {
        QWENQAT_CHECK(v.is_number_integer(), where, ": \"ids\" must hold integers");
        const int64_t id = v.get<int64_t>();
        QWENQAT_CHECK(id >= 0 && id < vocab_size, where, ": token id ", id,
                      " is outside the model's vocabulary of ", vocab_size);
        e.ids.push_back(int32_t(id));
      }
      QWENQAT_CHECK(!e.ids.empty(), where, ": \"ids\" is empty");
      if (j.contains("loss_mask")) {
        const auto& m = j["loss_mask"];
        QWENQAT_CHECK(m.is_array() && m.size() == e.ids.size(), where,
                      ": \"loss_mask\" must be an array as long as \"ids\"");
        for (const auto& v : m) {
          QWENQAT_CHECK(v.is_number_integer() && (v == 0 || v == 1), where,
                        ": \"loss_mask\" must hold 0 or 1");
          e.loss_mask.push_back(uint8_t(v.get<int>()));
        }
      } else {
        e.loss_mask.assign(e.ids.size(), 1);
        e.loss_mask[0] = 0;
      }
      out.push_back(std::move(e));
    } catch (const Error&) {
      if (!skip_bad_lines) throw;
    }
  }
  return out;
}

TrainData load_train_data(const DataOptions& o, int64_t vocab_size) {
  TrainData d;
  d.format = o.format == "auto" ? detect_format(o.data) : o.format;
  auto all = keep_usable(load_examples(o.data, d.format, o, vocab_size));
  QWENQAT_CHECK(!all.empty(), o.data, ": no usable examples (each needs at least one "
                "completion / loss token after its first token)");
  if (!o.eval_data.empty()) {
    d.train = std::move(all);
    const std::string ef = o.format == "auto" ? detect_format(o.eval_data) : o.format;
    d.eval = keep_usable(load_examples(o.eval_data, ef, o, vocab_size));
    return d;
  }
  d.split = data::make_split(int64_t(all.size()), o.holdout, o.split_seed, o.data);
  for (int64_t i : d.split.train) d.train.push_back(all[size_t(i)]);
  for (int64_t i : d.split.heldout) d.eval.push_back(all[size_t(i)]);
  QWENQAT_CHECK(!d.train.empty(), o.data, ": no training examples left after holding out ",
                o.holdout, " of ", all.size(), "; lower --holdout");
  return d;
}

}  // namespace qwenqat::qat
