// Implementation of results.h.
#include "experiments/eval/results.h"

#include <algorithm>
#include <set>

#include "data/util/check.h"
#include "experiments/eval/jsonl.h"

namespace qwenqat::experiments {

Json record_to_json(const ProblemRecord& r) {
  return Json{{"id", r.id},
              {"sample", r.sample},
              {"prompt_id", r.prompt_id},
              {"generated", r.generated},
              {"extracted", r.extracted},
              {"reference", r.reference},
              {"correct", r.correct},
              {"tokens", r.tokens},
              {"finished", r.finished},
              {"cut_off", !r.finished}};
}

namespace {

const Json& field(const Json& j, const std::string& what, const char* name, Json::value_t type) {
  auto it = j.find(name);
  QWENQAT_CHECK(it != j.end(), what, ": missing field \"", name, "\"");
  const bool ok = type == Json::value_t::number_integer
                      ? it->is_number_integer()
                      : (type == Json::value_t::boolean ? it->is_boolean() : it->is_string());
  QWENQAT_CHECK(ok, what, ": field \"", name, "\" has the wrong type (",
                type == Json::value_t::number_integer ? "expected an integer"
                : type == Json::value_t::boolean      ? "expected true/false"
                                                      : "expected a string",
                ", got ", it->dump(), ")");
  return *it;
}

}  // namespace

ProblemRecord record_from_json(const Json& j, const std::string& what) {
  QWENQAT_CHECK(j.is_object(), what, ": expected a JSON object");
  using T = Json::value_t;
  ProblemRecord r;
  r.id = field(j, what, "id", T::string).get<std::string>();
  r.sample = field(j, what, "sample", T::number_integer).get<int64_t>();
  r.prompt_id = field(j, what, "prompt_id", T::string).get<std::string>();
  r.generated = field(j, what, "generated", T::string).get<std::string>();
  r.extracted = field(j, what, "extracted", T::string).get<std::string>();
  r.reference = field(j, what, "reference", T::string).get<std::string>();
  r.correct = field(j, what, "correct", T::boolean).get<bool>();
  r.tokens = field(j, what, "tokens", T::number_integer).get<int64_t>();
  r.finished = field(j, what, "finished", T::boolean).get<bool>();
  if (auto it = j.find("cut_off"); it != j.end()) {
    QWENQAT_CHECK(it->is_boolean() && it->get<bool>() == !r.finished, what,
                  ": field \"cut_off\" must be the opposite of \"finished\"");
  }
  QWENQAT_CHECK(!r.id.empty(), what, ": field \"id\" is empty");
  QWENQAT_CHECK(r.sample >= 0, what, ": field \"sample\" must be >= 0, got ", r.sample);
  QWENQAT_CHECK(r.tokens >= 0, what, ": field \"tokens\" must be >= 0, got ", r.tokens);
  return r;
}

LoadedRecords load_records(const std::filesystem::path& results_path) {
  LoadedRecords out;
  JsonlContents contents = read_jsonl(results_path);
  out.warnings = std::move(contents.warnings);
  std::set<std::pair<std::string, int64_t>> seen;
  for (const auto& line : contents.lines) {
    const std::string what = results_path.string() + ":" + std::to_string(line.line_number);
    ProblemRecord r = record_from_json(line.value, what);
    if (!seen.insert({r.id, r.sample}).second) {
      out.warnings.push_back(what + ": duplicate record for problem " + r.id + " sample " +
                             std::to_string(r.sample) + "; keeping the first");
      continue;
    }
    out.records.push_back(std::move(r));
  }
  return out;
}

std::filesystem::path summary_path_for(const std::filesystem::path& results_path) {
  std::filesystem::path p = results_path;
  p.replace_extension();
  return std::filesystem::path(p.string() + ".summary.json");
}

EvalSummary summarize_records(const std::vector<ProblemRecord>& records,
                              const AnswerEqual& equal) {
  EvalSummary s;
  // Problems in order of first appearance, with their records ordered by sample.
  std::map<std::string, size_t> index;
  std::vector<std::vector<const ProblemRecord*>> by_problem;
  int64_t cut = 0;
  for (const auto& r : records) {
    auto [it, added] = index.try_emplace(r.id, by_problem.size());
    if (added) by_problem.emplace_back();
    by_problem[it->second].push_back(&r);
    s.generated_tokens += r.tokens;
    cut += r.finished ? 0 : 1;
  }
  s.problems = int64_t(by_problem.size());
  s.samples = int64_t(records.size());
  if (records.empty()) return s;
  std::vector<std::vector<bool>> correct;
  double voted_correct = 0.0;
  for (auto& recs : by_problem) {
    std::sort(recs.begin(), recs.end(),
              [](const ProblemRecord* a, const ProblemRecord* b) { return a->sample < b->sample; });
    std::vector<bool> c;
    std::vector<std::string> answers;
    for (const auto* r : recs) {
      c.push_back(r->correct);
      answers.push_back(r->extracted);
    }
    s.max_samples_per_problem = std::max<int64_t>(s.max_samples_per_problem, int64_t(c.size()));
    correct.push_back(std::move(c));
    auto vote = majority_vote(answers, equal);
    if (vote && equal(*vote, recs.front()->reference)) voted_correct += 1.0;
  }
  const double n = double(s.problems);
  s.accuracy = proportion_with_ci(std::min(n, mean_pass_at_1(correct) * n), n);
  s.maj_at_k = proportion_with_ci(voted_correct, n);
  s.mean_generated_tokens = double(s.generated_tokens) / double(s.samples);
  s.cut_off_share = double(cut) / double(s.samples);
  return s;
}

namespace {
Json proportion_json(const Proportion& p) {
  return Json{{"value", p.value},
              {"ci95_low", p.ci95.low},
              {"ci95_high", p.ci95.high},
              {"successes", p.successes},
              {"n", p.n}};
}
}  // namespace

Json summary_to_json(const EvalSummary& s) {
  return Json{{"problems", s.problems},
              {"samples", s.samples},
              {"samples_per_problem", s.max_samples_per_problem},
              {"accuracy", proportion_json(s.accuracy)},
              {"pass_at_1", s.accuracy.value},
              {"maj_at_k", proportion_json(s.maj_at_k)},
              {"mean_generated_tokens", s.mean_generated_tokens},
              {"cut_off_share", s.cut_off_share},
              {"generated_tokens", s.generated_tokens}};
}

}  // namespace qwenqat::experiments
