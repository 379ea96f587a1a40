// A terminal progress bar with rate and ETA, for anything that takes more than
// a few seconds (training, export, evaluation, benchmarks). Writes to stderr:
// redrawn in place on a terminal, one line every few seconds otherwise (logs).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qwenqat {

// Not thread-safe: update from one thread.
class Progress {
 public:
  // total: number of units (0 = unknown); unit: e.g. "tok", "step".
  Progress(std::string label, int64_t total, std::string unit = "it", bool enabled = true);
  ~Progress();

  // Advances to `done` units; `extra` is printed after the bar (e.g. "loss 2.31").
  void update(int64_t done, const std::string& extra = "");
  void advance(int64_t n = 1, const std::string& extra = "") { update(done_ + n, extra); }
  // Draws the final state and a newline. Called by the destructor if needed.
  void finish(const std::string& extra = "");

  double elapsed_seconds() const;
  double rate() const;  // units per second so far

 private:
  void draw(bool final);
  std::string label_, unit_, extra_;
  int64_t total_, done_ = 0;
  bool enabled_, tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1h02m", "3m05s", "12.3s".
std::string format_duration(double seconds);

}  // namespace qwenqat
