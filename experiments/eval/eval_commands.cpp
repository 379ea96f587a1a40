// Implementation of eval_commands.h: the `eval` subcommand and the two runs
// behind it (generation and teacher-forced) over the native engine.
#include "experiments/eval/eval_commands.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "data/gsm8k/answer.h"
#include "data/gsm8k/split.h"
#include "data/gsm8k/targets.h"
#include "data/util/check.h"
#include "data/util/text_format.h"
#include "experiments/eval/engine_adapters.h"
#include "experiments/eval/generation_eval.h"
#include "experiments/eval/teacher_forced.h"
#include "inference/commands.h"

namespace qwenqat::experiments {

namespace fs = std::filesystem;

namespace {

EngineModelOptions model_options(const EvalOptions& o, const std::string& model) {
  EngineModelOptions m;
  m.model = model;
  m.tokenizer = o.tokenizer;
  m.templ = o.templ;
  m.threads = o.threads;
  m.act_quant = o.act_quant;
  m.mmap = o.mmap;
  return m;
}

Json common_description(const EvalOptions& o, const EngineModel& m) {
  return Json{{"model", o.model},
              {"data", o.data},
              {"split", o.split},
              {"part", o.split.empty() ? "" : o.part},
              {"limit", o.limit},
              {"template", m.template_name},
              {"tokenizer", m.tokenizer ? m.tokenizer->origin() : ""},
              {"threads", m.pool->size()},
              {"backend", "engine"},
              {"act_quant", engine::act_quant_name(m.model->act_quant())}};
}

// The answer the evaluation compares: the normalized number when it parses,
// else the raw extracted text ("" when nothing was found).
std::string extract_for_eval(const std::string& generated) {
  const data::ExtractedAnswer a = data::extract_answer(generated);
  if (a.source == data::AnswerSource::kNone) return "";
  return a.normalized.value_or(a.text);
}

bool answers_equal(const std::string& a, const std::string& b) {
  const auto na = data::normalize_answer(a), nb = data::normalize_answer(b);
  if (na && nb) return *na == *nb;
  return a == b;
}

void print_generation_table(const Json& s, const fs::path& results) {
  const Json& acc = s["accuracy"];
  const Json& maj = s["maj_at_k"];
  std::cout << "GSM8K generation eval (" << s["problems"].get<int64_t>() << " problems, "
            << s["samples_per_problem"].get<int64_t>() << " samples each)\n"
            << "  pass@1 accuracy   " << str_printf("%.2f%%", 100 * acc["value"].get<double>())
            << "  [95% CI " << str_printf("%.2f", 100 * acc["ci95_low"].get<double>()) << " - "
            << str_printf("%.2f%%", 100 * acc["ci95_high"].get<double>()) << "]\n"
            << "  maj@K accuracy    " << str_printf("%.2f%%", 100 * maj["value"].get<double>())
            << "  [95% CI " << str_printf("%.2f", 100 * maj["ci95_low"].get<double>()) << " - "
            << str_printf("%.2f%%", 100 * maj["ci95_high"].get<double>()) << "]\n"
            << "  mean length       "
            << str_printf("%.1f", s["mean_generated_tokens"].get<double>()) << " tokens\n"
            << "  cut off           "
            << str_printf("%.1f%%", 100 * s["cut_off_share"].get<double>()) << "\n"
            << "  tokens/s          " << str_printf("%.1f", s["tokens_per_second"].get<double>())
            << "\n"
            << "  wall time         " << str_printf("%.1f", s["wall_seconds"].get<double>())
            << " s\n"
            << "  records           " << s["resumed_records"].get<int64_t>() << " resumed, "
            << s["new_records"].get<int64_t>() << " new -> " << results.string() << "\n";
}

void print_teacher_forced_table(const Json& j, const fs::path& path) {
  std::cout << "Teacher-forced eval (" << j["sequences"].get<int64_t>() << " solutions, "
            << j["tokens"].get<int64_t>() << " scored tokens)\n";
  if (j.contains("perplexity")) {
    std::cout << "  perplexity            " << str_printf("%.4f", j["perplexity"].get<double>())
              << "\n";
  }
  if (j.contains("kl")) {
    const Json& kl = j["kl"];
    const Json& top1 = j["top1_agreement"];
    std::cout << "  reference perplexity  "
              << str_printf("%.4f", j["reference_perplexity"].get<double>()) << "\n"
              << "  mean KL(ref||model)   " << str_printf("%.6f", kl["mean"].get<double>()) << " ± "
              << str_printf("%.6f", kl["mean_stderr"].get<double>()) << " nats\n"
              << "  median / p99 / max KL " << str_printf("%.6f", kl["median"].get<double>())
              << " / " << str_printf("%.6f", kl["p99"].get<double>()) << " / "
              << str_printf("%.6f", kl["max"].get<double>()) << "\n"
              << "  top-1 agreement       "
              << str_printf("%.2f%%", 100 * top1["value"].get<double>()) << "  [95% CI "
              << str_printf("%.2f", 100 * top1["ci95_low"].get<double>()) << " - "
              << str_printf("%.2f%%", 100 * top1["ci95_high"].get<double>()) << "]\n";
  }
  std::cout << "  wall time             " << str_printf("%.1f", j["wall_seconds"].get<double>())
            << " s -> " << path.string() << "\n";
}

}  // namespace

std::vector<IndexedProblem> load_eval_problems(const EvalOptions& o) {
  QWENQAT_CHECK(o.limit >= 0, "--limit must be >= 0 (0 = all problems), got ", o.limit);
  QWENQAT_CHECK(o.part == "heldout" || o.part == "train", "--part must be heldout or train, got \"",
                o.part, "\"");
  const std::vector<data::Gsm8kProblem> all = data::load_gsm8k(o.data, false);
  const std::string stem =
      o.data.empty() || o.data == "embedded" ? "embedded" : fs::path(o.data).stem().string();
  std::vector<int64_t> indices;
  if (o.split.empty()) {
    for (int64_t i = 0; i < int64_t(all.size()); ++i) indices.push_back(i);
  } else {
    const data::DataSplit s = data::read_split(o.split);
    QWENQAT_CHECK(s.total == int64_t(all.size()), "--split ", o.split, " splits ", s.total,
                  " problems but --data ", o.data, " has ", all.size(),
                  "; use the split made for this data file (qwenqat data split)");
    indices = o.part == "train" ? s.train : s.heldout;
  }
  if (o.limit > 0 && int64_t(indices.size()) > o.limit) indices.resize(size_t(o.limit));
  QWENQAT_CHECK(!indices.empty(), "no problems to evaluate in --data ", o.data,
                o.split.empty() ? "" : " (--split " + o.split + " --part " + o.part + ")");
  std::vector<IndexedProblem> out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back({stem + "-" + std::to_string(i), all[size_t(i)]});
  return out;
}

Json generation_eval(const EvalOptions& o) {
  QWENQAT_CHECK(!o.model.empty(), "eval: --model is required");
  // Cheap checks before the (slow) model load; run_generation_eval checks the rest.
  QWENQAT_CHECK(o.samples >= 1, "--samples must be >= 1, got ", o.samples);
  QWENQAT_CHECK(o.batch >= 1, "--batch must be >= 1, got ", o.batch);
  QWENQAT_CHECK(o.max_new_tokens >= 1, "--max-new-tokens must be >= 1, got ", o.max_new_tokens);
  const std::vector<IndexedProblem> problems = load_eval_problems(o);
  EngineModel m = load_engine_model(model_options(o, o.model));
  const data::PromptTemplate& t = data::get_template(m.template_name);

  std::vector<EvalProblem> eval_problems;
  for (const auto& p : problems) {
    eval_problems.push_back({p.id, t.render_prompt(p.problem.question), p.problem.final_answer});
  }
  EvalSettings s;
  s.sampling = {o.temperature, o.top_p, o.max_new_tokens};
  s.samples = o.samples;
  s.batch_size = o.batch;
  s.seed = o.seed;
  s.extract = extract_for_eval;
  s.equal = answers_equal;
  s.progress = o.progress;
  s.description = common_description(o, m);

  fs::create_directories(o.out);
  const fs::path results = fs::path(o.out) / "eval.jsonl";
  EngineGenerator generator(std::move(m));
  EvalRunReport report = run_generation_eval(eval_problems, s, generator, results, o.resume);
  return report.summary_json;
}

Json teacher_forced_eval(const EvalOptions& o) {
  QWENQAT_CHECK(!o.model.empty(), "eval: --model is required");
  const auto start = std::chrono::steady_clock::now();
  const std::vector<IndexedProblem> problems = load_eval_problems(o);
  EngineModel m = load_engine_model(model_options(o, o.model));
  const data::PromptTemplate& t = data::get_template(m.template_name);
  const std::string eos_text = data::end_of_turn_text(t, *m.tokenizer);

  QWENQAT_CHECK(o.max_length >= 0, "--max-length must be >= 0 (0 = whole sequences), got ",
                o.max_length);
  std::vector<TeacherForcedSequence> seqs;
  int64_t truncated = 0, skipped = 0;
  for (const auto& p : problems) {
    data::Example ex =
        data::tokenize_example(*m.tokenizer, data::gsm8k_prompt_completion(p.problem, t, eos_text));
    int64_t from = 0;
    while (from < int64_t(ex.loss_mask.size()) && ex.loss_mask[size_t(from)] == 0) ++from;
    QWENQAT_CHECK(from >= 1 && from < int64_t(ex.ids.size()), "problem ", p.id,
                  ": the prompt or the reference solution encodes to no tokens");
    if (o.max_length > 0 && int64_t(ex.ids.size()) > o.max_length) {
      ex.ids.resize(size_t(o.max_length));
      ++truncated;
      if (from >= o.max_length) {  // no reference token left to score
        ++skipped;
        continue;
      }
    }
    seqs.push_back({p.id, std::move(ex.ids), from});
  }
  QWENQAT_CHECK(!seqs.empty(), "teacher-forced evaluation: every prompt is at least --max-length ",
                o.max_length, " tokens long; nothing left to score");
  EngineLogitsSource model(m.model, m.pool);
  std::unique_ptr<EngineLogitsSource> reference;
  if (!o.reference.empty()) {
    EngineModelOptions r = model_options(o, o.reference);
    r.need_tokenizer = false;  // the evaluated model's tokenizer encodes the texts
    EngineModel rm = load_engine_model(r);
    reference = std::make_unique<EngineLogitsSource>(rm.model, m.pool);
  }
  const TeacherForcedAccumulator acc = run_teacher_forced(seqs, model, reference.get(), o.progress);

  Json j = acc.to_json();
  j["truncated_sequences"] = truncated;
  j["skipped_sequences"] = skipped;
  Json desc = common_description(o, m);
  desc["reference"] = o.reference;
  desc["max_length"] = o.max_length;
  j["settings"] = desc;
  j["wall_seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fs::create_directories(o.out);
  write_json_file(fs::path(o.out) / "teacher_forced.json", j);
  return j;
}

void register_eval_commands(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* c = app.add_subcommand(
      "eval",
      "GSM8K evaluation with the native engine: generation accuracy (pass@1, maj@K, 95% CI) or, "
      "with --teacher-forced, perplexity of the reference solutions and KL / top-1 agreement "
      "against a --reference model");
  c->add_option("--model", o->model, "Model: .h5 export or Hugging Face checkpoint directory")
      ->required();
  c->add_option("--tokenizer", o->tokenizer,
                "tokenizer.json (or its directory) to use instead of the model's")
      ->capture_default_str();
  c->add_option("--data", o->data, "GSM8K JSONL file (test.jsonl, train.jsonl) or 'embedded'")
      ->capture_default_str();
  c->add_option("--split", o->split,
                "Split file (qwenqat data split) of --data; empty = every problem")
      ->capture_default_str();
  c->add_option("--part", o->part, "Part of --split to evaluate: heldout or train")
      ->capture_default_str();
  c->add_option("--limit", o->limit, "Evaluate the first N problems only (0 = all)")
      ->capture_default_str();
  c->add_option("--max-length", o->max_length,
                "--teacher-forced: cut each prompt + reference to N tokens, e.g. the training "
                "--max-length, so only positions the model was trained on are scored; problems "
                "whose prompt alone is that long are skipped (0 = whole sequences)")
      ->capture_default_str();
  c->add_option("--samples", o->samples, "Samples per problem (K of pass@1 over K and maj@K)")
      ->capture_default_str();
  c->add_option("--temperature", o->temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str();
  c->add_option("--top-p", o->top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  c->add_option("--max-new-tokens", o->max_new_tokens, "Most tokens generated per answer")
      ->capture_default_str();
  c->add_option("--batch", o->batch, "Prompts generated together (one engine batch)")
      ->capture_default_str();
  c->add_option("--threads", o->threads, "Worker threads (0 = all hardware threads)")
      ->capture_default_str();
  c->add_option("--act-quant", o->act_quant, engine::kActQuantHelp)->capture_default_str();
  c->add_flag("--mmap", o->mmap, engine::kMmapHelp)->capture_default_str();
  c->add_option("--template", o->templ,
                "Prompt template: auto (the export's, else by tokenizer), r1, qwen or plain")
      ->capture_default_str();
  c->add_option("--out", o->out,
                "Output directory (eval.jsonl + eval.summary.json, or teacher_forced.json)")
      ->capture_default_str();
  c->add_flag("--resume", o->resume, "Continue an interrupted run in --out (redo only missing)")
      ->capture_default_str();
  c->add_option("--seed", o->seed, "Sampling seed")->capture_default_str();
  c->add_flag("--teacher-forced", o->teacher_forced,
              "Perplexity / KL / top-1 agreement on the reference solutions (no generation)")
      ->capture_default_str();
  c->add_option("--reference", o->reference,
                "With --teacher-forced: full-precision model (.h5 or checkpoint dir) for KL and "
                "top-1 agreement")
      ->capture_default_str();
  c->add_flag("--json", o->json, "Print the summary as JSON instead of a table")
      ->capture_default_str();
  c->callback([o] {
    QWENQAT_CHECK(o->reference.empty() || o->teacher_forced,
                  "--reference needs --teacher-forced (KL and top-1 agreement are teacher-forced "
                  "metrics)");
    if (o->teacher_forced) {
      const Json j = teacher_forced_eval(*o);
      if (o->json) {
        std::cout << j.dump(2) << "\n";
      } else {
        print_teacher_forced_table(j, fs::path(o->out) / "teacher_forced.json");
      }
      return;
    }
    const Json s = generation_eval(*o);
    if (o->json) {
      std::cout << s.dump(2) << "\n";
    } else {
      print_generation_table(s, fs::path(o->out) / "eval.jsonl");
    }
  });
}

}  // namespace qwenqat::experiments
