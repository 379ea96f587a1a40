// Implementation of generation_eval.h.
#include "experiments/eval/generation_eval.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "data/util/check.h"
#include "data/util/progress.h"
#include "experiments/eval/jsonl.h"

namespace qwenqat::experiments {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void validate(const std::vector<EvalProblem>& problems, const EvalSettings& s) {
  QWENQAT_CHECK(s.samples >= 1, "eval: --samples must be >= 1, got ", s.samples);
  QWENQAT_CHECK(s.batch_size >= 1, "eval: --batch-size must be >= 1, got ", s.batch_size);
  QWENQAT_CHECK(s.sampling.max_new_tokens >= 1, "eval: --max-new-tokens must be >= 1, got ",
                s.sampling.max_new_tokens);
  QWENQAT_CHECK(s.sampling.temperature >= 0, "eval: --temperature must be >= 0, got ",
                s.sampling.temperature);
  QWENQAT_CHECK(s.sampling.top_p > 0 && s.sampling.top_p <= 1,
                "eval: --top-p must be in (0, 1], got ", s.sampling.top_p);
  QWENQAT_CHECK(bool(s.extract) && bool(s.equal),
                "eval: the answer extraction and equality functions must be set");
  std::set<std::string> ids;
  for (const auto& p : problems) {
    QWENQAT_CHECK(!p.id.empty(), "eval: a problem has an empty id");
    QWENQAT_CHECK(ids.insert(p.id).second, "eval: problem id \"", p.id,
                  "\" occurs twice in the data; ids must be unique");
  }
}

}  // namespace

Json settings_to_json(const EvalSettings& s) {
  return Json{{"temperature", s.sampling.temperature},
              {"top_p", s.sampling.top_p},
              {"max_new_tokens", s.sampling.max_new_tokens},
              {"samples", s.samples},
              {"batch_size", s.batch_size},
              {"seed", s.seed},
              {"description", s.description}};
}

std::vector<WorkItem> remaining_work(const std::vector<EvalProblem>& problems, int64_t samples,
                                     const std::vector<ProblemRecord>& existing,
                                     const std::filesystem::path& results_path) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < problems.size(); ++i) index[problems[i].id] = i;
  std::set<std::pair<size_t, int64_t>> done;
  for (const auto& r : existing) {
    auto it = index.find(r.id);
    QWENQAT_CHECK(it != index.end(), results_path.string(), " holds problem \"", r.id,
                  "\", which is not in the evaluation data: it belongs to another run (use "
                  "another --results path or the same data)");
    const auto& p = problems[it->second];
    QWENQAT_CHECK(r.prompt_id == fnv1a_hex(p.prompt), results_path.string(),
                  ": the recorded prompt of problem \"", r.id,
                  "\" differs from the current one (template or data changed); resume with the "
                  "same settings or use another --results path");
    QWENQAT_CHECK(r.sample < samples, results_path.string(), " holds sample ", r.sample,
                  " of problem \"", r.id, "\" but --samples is ", samples,
                  "; resume with the same --samples");
    done.insert({it->second, r.sample});
  }
  std::vector<WorkItem> work;
  for (size_t p = 0; p < problems.size(); ++p) {
    for (int64_t k = 0; k < samples; ++k) {
      if (!done.count({p, k})) work.push_back({p, k});
    }
  }
  return work;
}

EvalRunReport run_generation_eval(const std::vector<EvalProblem>& problems,
                                  const EvalSettings& settings, Generator& generator,
                                  const std::filesystem::path& results_path, bool resume) {
  validate(problems, settings);
  const auto start = std::chrono::steady_clock::now();
  EvalRunReport report;
  std::vector<ProblemRecord> records;
  if (std::filesystem::exists(results_path) && std::filesystem::file_size(results_path) > 0) {
    QWENQAT_CHECK(resume, results_path.string(),
                  " already exists; pass --resume to continue that run or choose another "
                  "--results path");
    LoadedRecords loaded = load_records(results_path);
    records = std::move(loaded.records);
    report.warnings = std::move(loaded.warnings);
    for (const auto& w : report.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  }
  report.resumed = int64_t(records.size());
  const std::vector<WorkItem> work =
      remaining_work(problems, settings.samples, records, results_path);

  // Samples still missing per problem, for the "problems done" count.
  std::vector<int64_t> missing(problems.size(), 0);
  for (const auto& w : work) ++missing[w.problem];
  int64_t open_problems = 0;
  for (int64_t m : missing) open_problems += m > 0 ? 1 : 0;
  int64_t correct_so_far = 0;
  for (const auto& r : records) correct_so_far += r.correct ? 1 : 0;

  JsonlAppender out(results_path);
  Progress progress("eval", open_problems, "problems", settings.progress);
  int64_t problems_done = 0, new_tokens = 0;
  double generation_seconds = 0;
  for (size_t b = 0; b < work.size(); b += size_t(settings.batch_size)) {
    const size_t e = std::min(work.size(), b + size_t(settings.batch_size));
    std::vector<std::string> prompts;
    for (size_t i = b; i < e; ++i) prompts.push_back(problems[work[i].problem].prompt);
    const uint64_t item = uint64_t(work[b].problem) * uint64_t(settings.samples) +
                          uint64_t(work[b].sample);
    const uint64_t seed = splitmix64(settings.seed ^ splitmix64(item));
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<GenerationResult> results = generator.generate(prompts, settings.sampling, seed);
    generation_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    QWENQAT_CHECK(results.size() == prompts.size(), "eval: the generator returned ",
                  results.size(), " results for ", prompts.size(), " prompts");
    for (size_t i = b; i < e; ++i) {
      const EvalProblem& p = problems[work[i].problem];
      const GenerationResult& g = results[i - b];
      QWENQAT_CHECK(g.tokens >= 0, "eval: the generator reported ", g.tokens, " tokens");
      ProblemRecord r;
      r.id = p.id;
      r.sample = work[i].sample;
      r.prompt_id = fnv1a_hex(p.prompt);
      r.generated = g.text;
      r.extracted = settings.extract(g.text);
      r.reference = p.reference;
      r.correct = !r.extracted.empty() && settings.equal(r.extracted, p.reference);
      r.tokens = g.tokens;
      r.finished = g.finished;
      out.append(record_to_json(r));
      correct_so_far += r.correct ? 1 : 0;
      new_tokens += r.tokens;
      records.push_back(std::move(r));
      ++report.generated;
      if (--missing[work[i].problem] == 0) ++problems_done;
    }
    char extra[96];
    std::snprintf(extra, sizeof extra, "acc %.1f%% of %zu samples",
                  100.0 * double(correct_so_far) / double(records.size()), records.size());
    progress.update(problems_done, extra);
  }
  progress.finish();

  report.summary = summarize_records(records, settings.equal);
  report.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.tokens_per_second = generation_seconds > 0 ? double(new_tokens) / generation_seconds : 0;
  Json j = summary_to_json(report.summary);
  j["tokens_per_second"] = report.tokens_per_second;
  j["wall_seconds"] = report.wall_seconds;
  j["resumed_records"] = report.resumed;
  j["new_records"] = report.generated;
  j["complete"] = report.summary.samples == int64_t(problems.size()) * settings.samples;
  j["results"] = results_path.filename().string();
  j["settings"] = settings_to_json(settings);
  write_json_file(summary_path_for(results_path), j);
  report.summary_json = std::move(j);
  return report;
}

}  // namespace qwenqat::experiments
