// The sweep loop: for each point of this shard, skip it if its id is already
// in DIR/results.jsonl, otherwise run it through an abstract PointRunner
// (train or reuse, export, measure size, evaluate: supplied by the caller)
// and append its row at once, so an interrupted sweep resumes where it stopped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/sweep/sweep_results.h"
#include "experiments/sweep/sweep_spec.h"

namespace qwenqat::experiments {

// Executes one point. `work_dir` is a per-point directory (DIR/points/<id>/,
// created by the loop) for checkpoints and exports; a runner may reuse what it
// finds there from an earlier, interrupted attempt. Throws qwenqat::Error on
// failure. Need not be thread-safe (called from one thread).
class PointRunner {
 public:
  virtual ~PointRunner() = default;
  virtual PointMetrics run(const SweepPoint& point, const SweepSpec& spec,
                           const std::filesystem::path& work_dir) = 0;
};

struct SweepRunOptions {
  Shard shard;
  // true: a failing point is reported on stderr and the loop goes on with the
  // next one (the failed point has no row, so a re-run retries it); false: the
  // error propagates after the finished rows are saved.
  bool keep_going = false;
  bool progress = true;
};

struct SweepRunReport {
  int64_t shard_points = 0;  // points in this shard
  int64_t skipped = 0;       // already in results.jsonl
  int64_t ran = 0;           // finished in this run
  std::vector<std::string> failed;  // ids of points that threw (keep_going only)
};

// Runs the sweep's points of `options.shard` into `out_dir`.
SweepRunReport run_sweep(const SweepSpec& spec, PointRunner& runner,
                         const std::filesystem::path& out_dir, const SweepRunOptions& options);

}  // namespace qwenqat::experiments
