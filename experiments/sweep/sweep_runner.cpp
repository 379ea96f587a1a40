// Implementation of sweep_runner.h.
#include "experiments/sweep/sweep_runner.h"

#include <chrono>
#include <cstdio>

#include "data/util/check.h"
#include "data/util/progress.h"

namespace qwenqat::experiments {

SweepRunReport run_sweep(const SweepSpec& spec, PointRunner& runner,
                         const std::filesystem::path& out_dir, const SweepRunOptions& options) {
  const std::vector<SweepPoint> points = shard_points(expand_sweep(spec), options.shard);
  ResultsStore store(out_dir);
  SweepRunReport report;
  report.shard_points = int64_t(points.size());
  std::vector<const SweepPoint*> todo;
  for (const auto& p : points) {
    if (store.done(p.id)) {
      ++report.skipped;
    } else {
      todo.push_back(&p);
    }
  }
  Progress progress("sweep", int64_t(todo.size()), "points", options.progress);
  int64_t done = 0;
  for (const SweepPoint* p : todo) {
    const auto work_dir = out_dir / "points" / p->id;
    std::filesystem::create_directories(work_dir);
    const auto t0 = std::chrono::steady_clock::now();
    SweepRow row;
    row.point = *p;
    try {
      row.metrics = runner.run(*p, spec, work_dir);
    } catch (const std::exception& e) {
      if (!options.keep_going) throw;
      std::fprintf(stderr, "sweep: point %s failed: %s\n", p->id.c_str(), e.what());
      report.failed.push_back(p->id);
      progress.update(++done, "failed " + p->id);
      continue;
    }
    row.wall_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    store.append(row);
    ++report.ran;
    progress.update(++done, p->id);
  }
  progress.finish();
  return report;
}

}  // namespace qwenqat::experiments
