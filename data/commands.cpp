// Implementation of commands.h.
#include "data/commands.h"

#include <iostream>
#include <sstream>

#include "data/gsm8k/gsm8k.h"
#include "data/gsm8k/split.h"
#include "data/gsm8k/targets.h"
#include "data/prompts/templates.h"
#include "data/tokenizer/tokenizer.h"
#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"

namespace qwenqat::data {
namespace {

std::vector<int32_t> ids_from_json(const Json& j, const std::string& what) {
  QWENQAT_CHECK(j.is_array(), what, ": expected a JSON array of token ids");
  std::vector<int32_t> ids;
  for (const auto& v : j) {
    QWENQAT_CHECK(v.is_number_integer(), what, ": token ids must be integers");
    const int64_t id = v.get<int64_t>();
    QWENQAT_CHECK(id >= 0 && id <= INT32_MAX, what, ": token id ", id, " is out of range");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

// Each non-blank line of `text`, with its 1-based number.
template <class F>
void for_each_line(const std::string& text, F&& f) {
  std::istringstream in(text);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    f(line, n);
  }
}

}  // namespace

void run_tokenize(const TokenizeOptions& o, std::ostream& out) {
  QWENQAT_CHECK(o.text.empty() != o.file.empty(),
                "tokenize: pass exactly one of --text and --file");
  QWENQAT_CHECK(!(o.jsonl && o.file.empty()), "tokenize: --jsonl needs --file");
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  const Json::error_handler_t replace = Json::error_handler_t::replace;
  if (!o.jsonl) {
    const std::string input = o.file.empty() ? o.text : read_file(o.file);
    const std::string what = o.file.empty() ? "--text" : o.file;
    if (o.decode) {
      out << tok.decode(ids_from_json(parse_json(input, what), what), o.skip_special_tokens)
          << "\n";
    } else {
      check_utf8(input, what);
      out << Json(tok.encode(input, o.add_special_tokens)).dump() << "\n";
    }
    return;
  }
  for_each_line(read_file(o.file), [&](const std::string& line, int64_t n) {
    const std::string where = o.file + ":" + std::to_string(n);
    Json j = parse_json(line, where);
    QWENQAT_CHECK(j.is_object(), where, ": expected a JSON object");
    if (o.decode) {
      QWENQAT_CHECK(j.contains("ids"), where, ": missing \"ids\"");
      j["text"] = tok.decode(ids_from_json(j["ids"], where), o.skip_special_tokens);
    } else {
      QWENQAT_CHECK(j.contains("text") && j["text"].is_string(), where,
                    ": missing string field \"text\"");
      j["ids"] = tok.encode(j["text"].get<std::string>(), o.add_special_tokens);
    }
    out << j.dump(-1, ' ', false, replace) << "\n";
  });
}

void run_preview(const PreviewOptions& o, std::ostream& out) {
  QWENQAT_CHECK(o.n >= 1, "--n must be at least 1");
  QWENQAT_CHECK(o.max_length >= 1, "--max-length must be at least 1");
  const Tokenizer tok = Tokenizer::load(o.tokenizer);
  const std::string name = o.template_name.empty() ? default_template_name(tok) : o.template_name;
  const PromptTemplate& tpl = get_template(name);
  std::vector<PromptCompletion> pcs;
  std::vector<int64_t> lines;
  ReadStats stats;
  if (o.format == "gsm8k") {
    const auto problems = load_gsm8k(o.data, o.skip_bad_lines, &stats);
    check_template_tokens(tpl, tok);
    const std::string eos = end_of_turn_text(tpl, tok);
    for (int64_t i = 0; i < o.n && i < static_cast<int64_t>(problems.size()); ++i) {
      pcs.push_back(gsm8k_prompt_completion(problems[i], tpl, eos));
      lines.push_back(problems[i].line);
    }
  } else {
    QWENQAT_CHECK(o.format == "prompt-completion",
                  "--format must be gsm8k or prompt-completion, "
                  "got \"",
                  o.format, "\"");
    auto all = read_prompt_completion_jsonl(o.data, o.skip_bad_lines, &stats);
    for (int64_t i = 0; i < o.n && i < static_cast<int64_t>(all.size()); ++i) {
      pcs.push_back(std::move(all[i]));
      lines.push_back(0);
    }
  }
  const Json::error_handler_t replace = Json::error_handler_t::replace;
  for (size_t k = 0; k < pcs.size(); ++k) {
    Example e = tokenize_example(tok, pcs[k]);
    const bool truncated = static_cast<int64_t>(e.ids.size()) > o.max_length;
    if (truncated) {
      e.ids.resize(o.max_length);
      e.loss_mask.resize(o.max_length);
    }
    int64_t loss = 0;
    for (uint8_t m : e.loss_mask) loss += m;
    if (o.json) {
      Json tokens = Json::array();
      for (int32_t id : e.ids) tokens.push_back(tok.id_to_token(id));
      out << Json({{"template", name},
                   {"prompt", pcs[k].prompt},
                   {"completion", pcs[k].completion},
                   {"ids", e.ids},
                   {"loss_mask", e.loss_mask},
                   {"tokens", tokens},
                   {"truncated", truncated}})
                 .dump(-1, ' ', false, replace)
          << "\n";
      continue;
    }
    out << "=== example " << k + 1;
    if (lines[k] > 0) out << " (" << o.data << ":" << lines[k] << ")";
    out << ", template " << name << " ===\n--- prompt ---\n"
        << pcs[k].prompt << "\n--- target ---\n"
        << pcs[k].completion << "\n--- tokens: " << e.ids.size() << " (" << e.ids.size() - loss
        << " prompt, " << loss << " carry loss" << (truncated ? ", truncated at --max-length" : "")
        << "); loss tokens are marked * ---\n";
    for (size_t i = 0; i < e.ids.size(); ++i) {
      std::string piece;
      tok.append_token_bytes(e.ids[i], false, piece);
      out << (i ? " " : "") << (e.loss_mask[i] ? "*" : "") << e.ids[i] << ":"
          << Json(piece).dump(-1, ' ', false, replace);
    }
    out << "\n";
  }
  if (stats.bad_lines > 0) {
    out << "skipped " << stats.bad_lines << " malformed line(s) of " << stats.lines << "\n";
  }
}

void run_split(const SplitOptions& o, std::ostream& out) {
  QWENQAT_CHECK(!o.out.empty(), "data split: --out is required");
  ReadStats stats;
  const auto problems = read_gsm8k(o.data, o.skip_bad_lines, &stats);
  const DataSplit s = make_split(static_cast<int64_t>(problems.size()), o.holdout, o.seed, o.data);
  write_split(o.out, s);
  if (o.json) {
    out << Json({{"out", o.out},
                 {"total", s.total},
                 {"train", s.train.size()},
                 {"heldout", s.heldout.size()},
                 {"seed", s.seed},
                 {"bad_lines", stats.bad_lines}})
               .dump()
        << "\n";
  } else {
    out << "split " << s.total << " problems of " << o.data << ": " << s.train.size() << " train, "
        << s.heldout.size() << " held out (seed " << s.seed << ", holdout " << s.holdout << ")";
    if (stats.bad_lines > 0) out << "; skipped " << stats.bad_lines << " malformed line(s)";
    out << "\nwrote " << o.out << "\n";
  }
}

void register_commands(CLI::App& app) {
  auto tokenize_opts = std::make_shared<TokenizeOptions>();
  CLI::App* tk = app.add_subcommand(
      "tokenize", "Token ids of text with a Hugging Face tokenizer.json (one JSON line per input)");
  tk->add_option("--tokenizer", tokenize_opts->tokenizer,
                 "tokenizer.json or the model directory holding it")
      ->required();
  tk->add_option("--text", tokenize_opts->text,
                 "the input text (with --decode: a JSON array of ids)");
  tk->add_option("--file", tokenize_opts->file,
                 "read the input from this file (one input; with --jsonl one per line)");
  tk->add_flag("--jsonl", tokenize_opts->jsonl,
               "--file holds {\"text\": ...} lines; each is printed back with \"ids\" added "
               "(with --decode: {\"ids\": [...]} lines get \"text\")")
      ->capture_default_str();
  tk->add_flag("--decode", tokenize_opts->decode, "ids -> text instead of text -> ids")
      ->capture_default_str();
  tk->add_flag("--add-special-tokens", tokenize_opts->add_special_tokens,
               "add BOS/EOS as tokenizer_config.json says (add_bos_token)")
      ->capture_default_str();
  tk->add_flag("--skip-special-tokens", tokenize_opts->skip_special_tokens,
               "when decoding, drop tokens marked special")
      ->capture_default_str();
  tk->callback([tokenize_opts] { run_tokenize(*tokenize_opts, std::cout); });

  CLI::App* data = app.add_subcommand("data", "Inspect and split training data (GSM8K)");
  data->require_subcommand(1);
  auto preview_opts = std::make_shared<PreviewOptions>();
  CLI::App* pv = data->add_subcommand(
      "preview", "Show prompts, targets and which tokens carry loss for the first examples");
  pv->add_option("--data", preview_opts->data,
                 "GSM8K JSONL, \"embedded\" (built-in problems), or {prompt, completion} JSONL")
      ->capture_default_str();
  pv->add_option("--format", preview_opts->format, "gsm8k or prompt-completion")
      ->capture_default_str();
  pv->add_option("--tokenizer", preview_opts->tokenizer,
                 "tokenizer.json or the model directory holding it")
      ->required();
  pv->add_option(
        "--template", preview_opts->template_name,
        "prompt template: r1, qwen or plain (default: from the tokenizer's special tokens)")
      ->capture_default_str();
  pv->add_option("-n,--n", preview_opts->n, "number of examples")->capture_default_str();
  pv->add_option("--max-length", preview_opts->max_length, "truncate examples to this many tokens")
      ->capture_default_str();
  pv->add_flag("--skip-bad-lines", preview_opts->skip_bad_lines,
               "skip and count malformed lines instead of failing")
      ->capture_default_str();
  pv->add_flag("--json", preview_opts->json, "one JSON object per example")->capture_default_str();
  pv->callback([preview_opts] { run_preview(*preview_opts, std::cout); });

  auto split_opts = std::make_shared<SplitOptions>();
  CLI::App* sp = data->add_subcommand(
      "split", "Deterministic seeded train / held-out split of a GSM8K file, written as JSON");
  sp->add_option("--data", split_opts->data, "GSM8K JSONL (e.g. train.jsonl)")->required();
  sp->add_option("--out", split_opts->out, "the split (indices) JSON file to write")->required();
  sp->add_option("--seed", split_opts->seed, "shuffle seed")->capture_default_str();
  sp->add_option("--holdout", split_opts->holdout, "fraction held out, in [0, 1)")
      ->capture_default_str();
  sp->add_flag("--skip-bad-lines", split_opts->skip_bad_lines,
               "skip and count malformed lines instead of failing")
      ->capture_default_str();
  sp->add_flag("--json", split_opts->json, "print a JSON summary")->capture_default_str();
  sp->callback([split_opts] { run_split(*split_opts, std::cout); });
}

}  // namespace qwenqat::data
