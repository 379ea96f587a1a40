// Per-problem evaluation records (one JSON line per generated sample) and the
// summary of an evaluation run. A results file is a JSON-lines file:
//   {"id": "test-17", "sample": 0, "prompt_id": "3f2a...", "generated": "...",
//    "extracted": "18", "reference": "18", "correct": true, "tokens": 212,
//    "finished": true, "cut_off": false}
// `id` names the problem, `sample` is 0..K-1, `prompt_id` is the FNV-1a hash of
// the exact prompt text (so a resumed run can verify it uses the same prompt),
// `finished` means generation ended with EOS, `cut_off` that it hit
// max_new_tokens (always !finished). The summary is a JSON file beside it
// (summary_path_for). Field meanings: docs/EVALUATION.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/util/json_io.h"
#include "experiments/eval/metrics.h"

namespace qwenqat::experiments {

struct ProblemRecord {
  std::string id;
  int64_t sample = 0;
  std::string prompt_id;
  std::string generated;
  std::string extracted;  // empty if no answer could be extracted
  std::string reference;
  bool correct = false;
  int64_t tokens = 0;     // generated tokens
  bool finished = false;  // ended with EOS (false: cut off at max_new_tokens)
};

Json record_to_json(const ProblemRecord& r);
// Throws qwenqat::Error naming `what` (file:line) and the field on a missing
// or mistyped field, or on sample < 0 / tokens < 0.
ProblemRecord record_from_json(const Json& j, const std::string& what);

// The records of an existing results file. Duplicate (id, sample) pairs keep
// the first record and add a warning.
struct LoadedRecords {
  std::vector<ProblemRecord> records;
  std::vector<std::string> warnings;  // truncated tail, duplicates
};
// Missing file: no records. Truncated last line: ignored with a warning.
LoadedRecords load_records(const std::filesystem::path& results_path);

// "<dir>/<stem>.summary.json" beside "<dir>/<stem>.jsonl".
std::filesystem::path summary_path_for(const std::filesystem::path& results_path);

// Aggregates of a complete or partial set of records.
//   accuracy : mean pass@1 (per problem: correct samples / its samples, then the
//              mean over problems); its Wilson 95% interval treats each problem
//              as one trial (n = problems), since samples of one problem are
//              correlated. With K = 1 this is plain accuracy.
//   maj_at_k : share of problems whose majority-voted answer equals the
//              reference (majority_vote with `equal`), Wilson interval over problems.
struct EvalSummary {
  int64_t problems = 0;  // problems with at least one record
  int64_t samples = 0;   // records
  int64_t max_samples_per_problem = 0;
  Proportion accuracy;   // mean pass@1, see above
  Proportion maj_at_k;
  double mean_generated_tokens = 0.0;
  double cut_off_share = 0.0;
  int64_t generated_tokens = 0;
};
EvalSummary summarize_records(const std::vector<ProblemRecord>& records, const AnswerEqual& equal);
Json summary_to_json(const EvalSummary& s);

}  // namespace qwenqat::experiments
