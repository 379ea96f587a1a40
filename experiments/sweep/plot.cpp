// Implementation of plot.h.
#include "experiments/sweep/plot.h"

#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <optional>
#include <sstream>

#include "data/util/check.h"
#include "data/util/file_io.h"

extern char** environ;

namespace qwenqat::experiments {

namespace {

std::optional<double> value_of(const SweepRow& r, PlotMetric m) {
  switch (m) {
    case PlotMetric::kAccuracy:
      return r.metrics.accuracy ? std::optional<double>(100.0 * r.metrics.accuracy->value)
                                : std::nullopt;
    case PlotMetric::kPerplexity:
      return r.metrics.perplexity;
    case PlotMetric::kKl:
      if (r.point.method == "fp" && !r.metrics.kl_mean) return 0.0;
      return r.metrics.kl_mean;
    case PlotMetric::kTop1:
      if (r.point.method == "fp" && !r.metrics.top1_agreement) return 100.0;
      return r.metrics.top1_agreement ? std::optional<double>(100.0 * *r.metrics.top1_agreement)
                                      : std::nullopt;
  }
  return std::nullopt;
}

// "w4g32 KD", "w8c PTQ", "fp": a point label that fits beside a marker.
std::string short_label(const SweepRow& r) {
  const auto& p = r.point;
  if (p.method == "fp") return "fp";
  const char* m = p.method == "ptq" ? "PTQ" : p.method == "qat" ? "QAT" : "KD";
  std::string s = p.scheme.name() + " " + m;
  if (p.mixed_precision != "none") s += " " + p.mixed_precision;
  return s;
}

std::string axis_label(PlotMetric m) {
  switch (m) {
    case PlotMetric::kAccuracy:
      return "GSM8K accuracy (%)";
    case PlotMetric::kPerplexity:
      return "perplexity (lower is better)";
    case PlotMetric::kKl:
      return "mean KL(P_fp || P_q) per token (lower is better)";
    case PlotMetric::kTop1:
      return "top-1 agreement with fp (%)";
  }
  return "";
}

// Runs `gnuplot script`; throws on failure.
void run_gnuplot(const std::filesystem::path& script) {
  const std::string s = script.string();
  char* argv[] = {const_cast<char*>("gnuplot"), const_cast<char*>(s.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "gnuplot", nullptr, nullptr, argv, environ);
  QWENQAT_CHECK(rc == 0, "cannot run gnuplot (", std::strerror(rc),
                "); install the Debian package gnuplot-nox, or skip plots with --no-plot");
  int status = 0;
  QWENQAT_CHECK(waitpid(pid, &status, 0) == pid, "waiting for gnuplot failed");
  QWENQAT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "gnuplot failed on ", s,
                " (see its messages above)");
}

std::string gp_quote(const std::filesystem::path& p) {
  const std::string s = p.string();
  QWENQAT_CHECK(s.find('\'') == std::string::npos && s.find('\n') == std::string::npos,
                "plot path ", s, " contains a quote or newline; use a plainer directory name");
  return "'" + s + "'";
}

}  // namespace

PlotMetric choose_plot_metric(const std::vector<SweepRow>& rows, const std::string& name) {
  const std::pair<const char*, PlotMetric> kNames[] = {{"accuracy", PlotMetric::kAccuracy},
                                                       {"perplexity", PlotMetric::kPerplexity},
                                                       {"kl", PlotMetric::kKl},
                                                       {"top1", PlotMetric::kTop1}};
  for (const auto& [n, m] : kNames) {
    if (name == n) return m;
  }
  QWENQAT_CHECK(name == "auto", "--metric \"", name,
                "\" is unknown (use auto, accuracy, perplexity, kl or top1)");
  for (const auto& [n, m] : kNames) {
    for (const auto& r : rows) {
      if (r.point.method != "fp" && value_of(r, m)) return m;
    }
  }
  fail("no quantized result has accuracy, perplexity, KL or top-1 agreement to plot");
}

std::string metric_name(PlotMetric m) {
  switch (m) {
    case PlotMetric::kAccuracy:
      return "accuracy";
    case PlotMetric::kPerplexity:
      return "perplexity";
    case PlotMetric::kKl:
      return "kl";
    case PlotMetric::kTop1:
      return "top1";
  }
  return "";
}

bool higher_is_better(PlotMetric m) { return m == PlotMetric::kAccuracy || m == PlotMetric::kTop1; }

std::vector<size_t> pareto_front(const std::vector<XY>& pts, bool higher_better) {
  auto better_eq = [&](double a, double b) { return higher_better ? a >= b : a <= b; };
  auto better = [&](double a, double b) { return higher_better ? a > b : a < b; };
  std::vector<size_t> front;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (std::isnan(pts[i].x) || std::isnan(pts[i].y)) continue;
    bool dominated = false;
    for (size_t j = 0; j < pts.size() && !dominated; ++j) {
      if (j == i || std::isnan(pts[j].x) || std::isnan(pts[j].y)) continue;
      dominated = pts[j].x <= pts[i].x && better_eq(pts[j].y, pts[i].y) &&
                  (pts[j].x < pts[i].x || better(pts[j].y, pts[i].y));
    }
    if (!dominated) front.push_back(i);
  }
  std::stable_sort(front.begin(), front.end(),
                   [&](size_t a, size_t b) { return pts[a].x < pts[b].x; });
  return front;
}

PlotFiles write_plot(const std::vector<SweepRow>& rows, PlotMetric metric,
                     const std::filesystem::path& dir, const std::string& base,
                     const std::string& title) {
  std::vector<const SweepRow*> used;
  std::vector<XY> xy;
  std::optional<double> fp_value;
  for (const auto& r : rows) {
    auto v = value_of(r, metric);
    if (!v) continue;
    if (r.point.method == "fp" && !fp_value) fp_value = v;
    used.push_back(&r);
    xy.push_back({double(r.metrics.size_bytes) / 1e6, *v});
  }
  QWENQAT_CHECK(!used.empty(), "plot: no result has ", metric_name(metric),
                "; choose another --metric");
  for (const auto& p : xy) {
    QWENQAT_CHECK(p.x > 0, "plot: a result has size_bytes 0; sizes must be measured to plot");
  }
  const auto front = pareto_front(xy, higher_is_better(metric));
  // KL spans orders of magnitude (1e-7 at 8 bits, 1e-2 for a model that drifts):
  // a log y axis, on which the fp point and line (KL 0) cannot be drawn.
  bool log_y = metric == PlotMetric::kKl;
  for (size_t i = 0; i < used.size(); ++i)
    if (used[i]->point.method != "fp" && !(xy[i].y > 0)) log_y = false;
  auto y_text = [&](double y) {
    if (log_y && !(y > 0)) return std::string("NaN");
    std::ostringstream o;
    o << y;
    return o.str();
  };

  PlotFiles files;
  std::filesystem::create_directories(dir);
  const auto abs_dir = std::filesystem::absolute(dir);
  files.data = abs_dir / (base + ".dat");
  files.script = abs_dir / (base + ".gp");
  files.png = abs_dir / (base + ".png");
  files.svg = abs_dir / (base + ".svg");
  // Data: one block per method (fp, ptq, qat, qat_kd), then the Pareto front;
  // blocks are separated by two blank lines (gnuplot `index`).
  std::ostringstream dat;
  // Each method's block index (its place here), point style and legend title.
  struct MethodStyle {
    const char* method;
    const char* style;
  };
  constexpr MethodStyle kMethods[] = {{"fp", "pt 3 ps 1.5 lc rgb '#000000' title 'full precision'"},
                                      {"ptq", "pt 7 ps 1.2 lc rgb '#d62728' title 'PTQ (RTN)'"},
                                      {"qat", "pt 5 ps 1.2 lc rgb '#1f77b4' title 'QAT'"},
                                      {"qat_kd", "pt 9 ps 1.4 lc rgb '#2ca02c' title 'QAT+KD'"}};
  constexpr int kNumMethods = static_cast<int>(std::size(kMethods));
  bool drawable[kNumMethods] = {};  // a point the axes can show (gnuplot warns otherwise)
  for (int b = 0; b < kNumMethods; ++b) {
    const std::string m = kMethods[b].method;
    dat << "# " << m << ": size_mb value label\n";
    bool any = false;
    for (size_t i = 0; i < used.size(); ++i) {
      if (used[i]->point.method != m) continue;
      const std::string label = m == "fp" ? "fp" : used[i]->point.scheme.name();
      const std::string y = y_text(xy[i].y);
      dat << xy[i].x << " " << y << " \"" << label << "\"\n";
      any = true;
      drawable[b] = drawable[b] || y != "NaN";
    }
    if (!any) dat << "NaN NaN \"\"\n";  // keeps the block index stable
    dat << "\n\n";
  }
  dat << "# pareto front: size_mb value label\n";
  for (size_t i : front) {
    files.pareto_ids.push_back(used[i]->point.id);
    dat << xy[i].x << " " << y_text(xy[i].y) << " \"" << short_label(*used[i]) << "\"\n";
  }
  write_file_atomic(files.data, dat.str());

  std::ostringstream gp;
  gp << "# Accuracy-versus-size plot written by qwenqat report; run: gnuplot " << base << ".gp\n"
     << "set title \""
     << (title.empty() ? "Quantized variants: " + metric_name(metric) + " vs size" : title)
     << "\" noenhanced\n"
     << "set xlabel 'model size (MB, log scale)'\nset ylabel '" << axis_label(metric)
     << (log_y ? " (log scale; fp = 0 is off the axis)" : "") << "'\n"
     << "set logscale x 2\nset grid\nset key inside right bottom box opaque noenhanced\n"
     << "set datafile missing 'NaN'\n";
  if (log_y) {
    gp << "set logscale y 10\nset format y '%.0e'\nset key inside right top box opaque "
          "noenhanced\n";
    fp_value.reset();  // KL 0: no reference line on a log axis
  }
  if (fp_value) gp << "fp = " << *fp_value << "\n";
  gp << "do for [t=1:2] {\n"
     << "  if (t == 1) { set terminal pngcairo size 1100,700 noenhanced; set output "
     << gp_quote(temp_path_for(files.png)) << " }\n"
     << "  if (t == 2) { set terminal svg size 1100,700 noenhanced; set output "
     << gp_quote(temp_path_for(files.svg)) << " }\n"
     << "  plot " << gp_quote(files.data)
     << " index 4 using 1:2 with lines lw 2 lc rgb '#888888' title 'Pareto front', \\\n"
     << "       '' index 4 using 1:2 with points pt 6 ps 2.2 lc rgb '#000000' notitle, \\\n";
  // The methods' points (blocks without a drawable point left out), full
  // precision drawn last, on top.
  for (int b : {1, 2, 3, 0})
    if (drawable[b])
      gp << "       '' index " << b << " using 1:2 with points " << kMethods[b].style << ", \\\n";
  gp << "       '' index 4 using 1:2:3 with labels offset 0,1 font ',8' notitle";
  if (fp_value)
    gp << ", \\\n       fp with lines dt 2 lw 2 lc rgb '#000000' title 'full precision "
          "(reference)'";
  gp << "\n  unset output\n}\n";
  write_file_atomic(files.script, gp.str());
  try {
    run_gnuplot(files.script);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(temp_path_for(files.png), ec);
    std::filesystem::remove(temp_path_for(files.svg), ec);
    throw;
  }
  commit_temp_file(temp_path_for(files.png), files.png);
  commit_temp_file(temp_path_for(files.svg), files.svg);
  return files;
}

}  // namespace qwenqat::experiments
