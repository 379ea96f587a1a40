// The generation evaluation driver: K samples per problem through an abstract
// batched Generator (the native engine and the LibTorch model implement it),
// per-sample JSON-lines records appended as they finish, --resume that redoes
// only the missing (problem, sample) pairs, a progress bar with running
// accuracy and ETA, and an atomically written summary JSON beside the results.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "experiments/eval/results.h"

namespace qwenqat::experiments {

// Sampling per DeepSeek's recommendation by default; temperature 0 = greedy.
struct SamplingSettings {
  double temperature = 0.6;
  double top_p = 0.95;
  int64_t max_new_tokens = 2048;
};

// One generated completion (text without the prompt).
struct GenerationResult {
  std::string text;
  int64_t tokens = 0;     // generated tokens, EOS not counted
  bool finished = false;  // true: stopped at EOS; false: cut off at max_new_tokens
};

// A batched text generator. generate() returns exactly one result per prompt,
// in order; `seed` seeds the sampler for this call (the driver derives it from
// the run seed and the position of the batch's first item, see
// docs/EVALUATION.md). Implementations need not be thread-safe; the driver
// calls from one thread. Errors are thrown as qwenqat::Error.
class Generator {
 public:
  virtual ~Generator() = default;
  virtual std::vector<GenerationResult> generate(const std::vector<std::string>& prompts,
                                                 const SamplingSettings& sampling,
                                                 uint64_t seed) = 0;
};

// One problem: `prompt` is the full model input (template already applied),
// `reference` the reference final answer (already extracted).
struct EvalProblem {
  std::string id;
  std::string prompt;
  std::string reference;
};

struct EvalSettings {
  SamplingSettings sampling;
  int64_t samples = 1;     // K samples per problem
  int64_t batch_size = 8;  // prompts per generate() call
  uint64_t seed = 0;
  // Answer extraction from generated text ("" when none) and answer equality.
  std::function<std::string(const std::string&)> extract;
  std::function<bool(const std::string&, const std::string&)> equal;
  bool progress = true;  // progress bar on stderr
  // Free-form description of what was evaluated (model path, data file,
  // template...), copied into the summary's "settings".
  Json description = Json::object();
};

// The work left: (problem index, sample) pairs without a record, problem-major.
struct WorkItem {
  size_t problem = 0;
  int64_t sample = 0;
  bool operator==(const WorkItem&) const = default;
};
// Checks existing records against the problem set (every record's id must be a
// problem, its prompt_id must match the problem's prompt, sample < samples) and
// returns the missing pairs. Throws qwenqat::Error naming `results_path` on a
// mismatch (a results file of a different run).
std::vector<WorkItem> remaining_work(const std::vector<EvalProblem>& problems, int64_t samples,
                                     const std::vector<ProblemRecord>& existing,
                                     const std::filesystem::path& results_path);

struct EvalRunReport {
  EvalSummary summary;     // over all records (resumed and new)
  int64_t resumed = 0;     // records found in the existing file
  int64_t generated = 0;   // records produced by this run
  double wall_seconds = 0;           // this run
  double tokens_per_second = 0;      // this run's generated tokens / generation time
  std::vector<std::string> warnings; // from loading the existing file
  Json summary_json;                 // what was written to the summary file
};

// Runs the evaluation. Without `resume`, an existing non-empty results file is
// an error (so nothing is overwritten by accident); with it, finished pairs
// are kept and only the missing ones generated. Every record is appended and
// flushed as soon as its batch returns; the summary (summary_path_for) is
// written atomically at the end. Problem ids must be unique and non-empty;
// settings.extract/equal must be set; samples >= 1, batch_size >= 1.
EvalRunReport run_generation_eval(const std::vector<EvalProblem>& problems,
                                  const EvalSettings& settings, Generator& generator,
                                  const std::filesystem::path& results_path, bool resume);

// The settings as they appear in the summary's "settings" object.
Json settings_to_json(const EvalSettings& s);

}  // namespace qwenqat::experiments
