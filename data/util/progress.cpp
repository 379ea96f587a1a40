// Implementation of progress.h.
#include "data/util/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace qwenqat {

std::string format_duration(double s) {
  char buf[32];
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  }
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, bool enabled)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && done_ > 0) finish(extra_);
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  double t = elapsed_seconds();
  return t > 0 ? double(done_) / t : 0.0;
}

void Progress::update(int64_t done, const std::string& extra) {
  done_ = done;
  extra_ = extra;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.1 : 5.0)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish(const std::string& extra) {
  if (finished_) return;
  finished_ = true;
  if (!extra.empty()) extra_ = extra;
  draw(true);
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  double r = rate();
  std::string bar;
  if (total_ > 0) {
    const int width = 24;
    int filled = int(width * std::min<double>(1.0, double(done_) / double(total_)));
    bar.reserve(width + 3);  // appends: GCC 12 warns falsely on "[" + std::string&& (-Wrestrict)
    bar.append("[").append(filled, '#').append(width - filled, '.').append("] ");
  }
  char buf[160];
  if (total_ > 0) {
    double eta = r > 0 ? double(total_ - done_) / r : NAN;
    std::snprintf(buf, sizeof buf, "%lld/%lld %s | %.2f %s/s | %s elapsed | ETA %s",
                  (long long)done_, (long long)total_, unit_.c_str(), r, unit_.c_str(),
                  format_duration(elapsed_seconds()).c_str(),
                  final ? "0s" : format_duration(eta).c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%lld %s | %.2f %s/s | %s elapsed", (long long)done_,
                  unit_.c_str(), r, unit_.c_str(), format_duration(elapsed_seconds()).c_str());
  }
  std::string line = label_ + " " + bar + buf + (extra_.empty() ? "" : " | " + extra_);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace qwenqat
