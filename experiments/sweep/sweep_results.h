// Sweep results: one row per finished point, appended to results.jsonl (the
// source of truth, one flushed line per point) with results.csv regenerated
// atomically from it after every append; loading with truncated-tail
// tolerance; and the merge of shard result files (dedupe by point id).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "experiments/eval/jsonl.h"
#include "experiments/eval/metrics.h"
#include "experiments/eval/results.h"
#include "experiments/eval/teacher_forced.h"
#include "experiments/sweep/sweep_spec.h"

namespace qwenqat::experiments {

// What a PointRunner measures for one point. Optional metrics are absent
// (JSON null, empty CSV cell) when the point was not evaluated that way.
struct PointMetrics {
  int64_t size_bytes = 0;        // exported file size
  double bits_per_weight = 0.0;  // exported bits per linear-layer weight
  std::optional<Proportion> accuracy;  // GSM8K accuracy (mean pass@1) with CI
  std::optional<double> perplexity;
  std::optional<double> kl_mean;         // mean KL(P_fp || P_q) per token
  std::optional<double> top1_agreement;  // share of tokens with the same argmax as fp
  Json extra = Json::object();           // runner-specific details (paths, timings)
};

// Copies an evaluation's outcome into a point's metrics: accuracy (mean
// pass@1 with its interval) from a generation eval; perplexity, mean KL and
// top-1 agreement (the latter two only if it had a reference) from a
// teacher-forced eval. Throws if the eval scored nothing.
void set_generation_metrics(PointMetrics& m, const EvalSummary& summary);
void set_teacher_forced_metrics(PointMetrics& m, const TeacherForcedAccumulator& acc);

struct SweepRow {
  SweepPoint point;  // point.index is not stored (it depends on the grid)
  PointMetrics metrics;
  double wall_seconds = 0.0;
};

inline constexpr const char* kResultsJsonl = "results.jsonl";
inline constexpr const char* kResultsCsv = "results.csv";

Json row_to_json(const SweepRow& row);
// Throws qwenqat::Error naming `what` and the field on missing/mistyped fields.
SweepRow row_from_json(const Json& j, const std::string& what);

struct LoadedRows {
  std::vector<SweepRow> rows;         // first row per point id, in file order
  std::vector<std::string> warnings;  // truncated tail, duplicate ids
};
// Reads a results.jsonl (missing file: no rows).
LoadedRows load_rows(const std::filesystem::path& jsonl_path);

// CSV of the rows (header + one line per row; RFC 4180 quoting), written atomically.
std::string rows_to_csv(const std::vector<SweepRow>& rows);

// The results of one sweep directory, open for appending. Not thread-safe and
// one process per directory (shards on several machines write to their own
// directories and are merged with merge_results).
class ResultsStore {
 public:
  // Loads DIR/results.jsonl if present (warnings printed to stderr) and creates DIR.
  explicit ResultsStore(std::filesystem::path dir);
  bool done(const std::string& point_id) const { return ids_.count(point_id) > 0; }
  // Appends the row (flushed) and rewrites DIR/results.csv atomically. Throws
  // if the point id is already present.
  void append(const SweepRow& row);
  const std::vector<SweepRow>& rows() const { return rows_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::filesystem::path dir_;
  std::vector<SweepRow> rows_;
  std::set<std::string> ids_;
  std::vector<std::string> warnings_;
  std::optional<JsonlAppender> out_;
};

struct MergeReport {
  int64_t rows = 0;        // rows written
  int64_t duplicates = 0;  // identical repeats dropped
  std::vector<std::string> warnings;  // conflicting repeats (first kept), truncated tails
};
// Merges results files (each input is a results.jsonl or a directory holding
// one) into OUT_DIR/results.jsonl and results.csv, both written atomically. A
// point id seen more than once keeps its first row (inputs in the given
// order); a repeat whose metrics differ is reported as a warning. OUT_DIR's
// own results.jsonl may be among the inputs. Throws if an input is missing.
MergeReport merge_results(const std::vector<std::filesystem::path>& inputs,
                          const std::filesystem::path& out_dir);

}  // namespace qwenqat::experiments
