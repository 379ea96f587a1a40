// The accuracy-versus-size plot of a sweep: the Pareto front (smallest size,
// best metric) computed here, and a gnuplot script + data file rendered to PNG
// (pngcairo) and SVG by running Debian's gnuplot (package gnuplot-nox). The
// full-precision model is drawn as a horizontal reference line.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "experiments/sweep/sweep_results.h"

namespace qwenqat::experiments {

// The y metric of a plot. Accuracy and top-1 agreement are better high,
// perplexity and KL better low.
enum class PlotMetric { kAccuracy, kPerplexity, kKl, kTop1 };

// "auto" picks the first metric that some row has, in the order accuracy,
// perplexity, kl, top1 (throws if none has any); otherwise the named metric.
// Throws qwenqat::Error naming --metric on an unknown name.
PlotMetric choose_plot_metric(const std::vector<SweepRow>& rows, const std::string& name);
std::string metric_name(PlotMetric m);
bool higher_is_better(PlotMetric m);

struct XY {
  double x = 0.0;  // size (smaller is better)
  double y = 0.0;  // metric
};
// Indices of the points not dominated by any other, sorted by x ascending. A
// point is dominated if another has x <= its x and a y at least as good, with
// at least one of the two strictly better; so exact duplicates both stay on
// the front. NaN coordinates are never on the front.
std::vector<size_t> pareto_front(const std::vector<XY>& points, bool higher_better);

struct PlotFiles {
  std::filesystem::path data, script, png, svg;
  std::vector<std::string> pareto_ids;  // point ids on the front, by size
};

// Writes DIR/<base>.dat and DIR/<base>.gp and runs gnuplot to make
// DIR/<base>.png and DIR/<base>.svg (all written atomically). Rows without
// the metric are left out. Throws if no row has the metric, if gnuplot is not
// installed (install gnuplot-nox) or if it fails.
PlotFiles write_plot(const std::vector<SweepRow>& rows, PlotMetric metric,
                     const std::filesystem::path& dir, const std::string& base = "accuracy_vs_size",
                     const std::string& title = "");

}  // namespace qwenqat::experiments
