// Implementation of report_commands.h.
#include "experiments/sweep/report_commands.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "experiments/sweep/plot.h"
#include "experiments/sweep/report.h"
#include "experiments/sweep/sweep_results.h"

namespace qwenqat::experiments {

ReportResult write_report(const ReportOptions& o) {
  QWENQAT_CHECK(!o.results_dir.empty(), "--results: give the sweep's results directory");
  if (!o.merge.empty()) {
    std::vector<std::filesystem::path> inputs;
    if (std::filesystem::exists(o.results_dir / kResultsJsonl)) {
      inputs.push_back(o.results_dir / kResultsJsonl);
    }
    inputs.insert(inputs.end(), o.merge.begin(), o.merge.end());
    MergeReport m = merge_results(inputs, o.results_dir);
    for (const auto& w : m.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::fprintf(stderr, "merged %lld rows (%lld duplicates dropped) into %s\n",
                 (long long)m.rows, (long long)m.duplicates,
                 (o.results_dir / kResultsJsonl).c_str());
  }
  const auto jsonl = o.results_dir / kResultsJsonl;
  QWENQAT_CHECK(std::filesystem::exists(jsonl), jsonl.string(),
                " does not exist; --results must be a sweep output directory");
  LoadedRows loaded = load_rows(jsonl);
  for (const auto& w : loaded.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  QWENQAT_CHECK(!loaded.rows.empty(), jsonl.string(), " holds no results yet");

  const std::string table = markdown_table(loaded.rows);
  write_file_atomic(o.results_dir / "results.md", table);
  Json out{{"table", (o.results_dir / "results.md").string()},
           {"rows", table_json(loaded.rows)}};
  if (o.plot) {
    const PlotMetric metric = choose_plot_metric(loaded.rows, o.metric);
    PlotFiles files = write_plot(loaded.rows, metric, o.results_dir, "accuracy_vs_size", o.title);
    out["plot"] = Json{{"metric", metric_name(metric)},
                       {"png", files.png.string()},
                       {"svg", files.svg.string()},
                       {"script", files.script.string()},
                       {"data", files.data.string()},
                       {"pareto_front", files.pareto_ids}};
  }
  return {table, std::move(out)};
}

void run_report(const ReportOptions& o) {
  const ReportResult r = write_report(o);
  if (o.json) {
    std::cout << r.json.dump(2) << "\n";
  } else {
    std::cout << r.markdown;
    std::cout << "\nwrote " << (o.results_dir / "results.md").string();
    if (o.plot) {
      std::cout << ", " << r.json["plot"]["png"].get<std::string>() << ", "
                << r.json["plot"]["svg"].get<std::string>();
    }
    std::cout << "\n";
  }
}

void register_report_commands(CLI::App& app) {
  auto opts = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Turn a sweep's results.jsonl into a Markdown table (results.md) and an "
      "accuracy-versus-size plot (accuracy_vs_size.png/.svg), in the results directory");
  cmd->add_option("--results", opts->results_dir,
                  "Sweep output directory holding results.jsonl (outputs are written there)")
      ->required();
  cmd->add_option("--merge", opts->merge,
                  "Shard results (results.jsonl files or directories) to merge into "
                  "DIR/results.jsonl first; duplicates by point id are dropped");
  cmd->add_option("--metric", opts->metric,
                  "Plot y axis: auto (accuracy if measured, else perplexity, kl, top1), "
                  "accuracy, perplexity, kl or top1")
      ->capture_default_str();
  cmd->add_flag("!--no-plot", opts->plot, "Skip the gnuplot plot (table only)")
      ->capture_default_str();
  cmd->add_option("--title", opts->title, "Plot title (default: derived from the metric)")
      ->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print the table rows, paths and Pareto front as JSON")
      ->capture_default_str();
  cmd->callback([opts] { run_report(*opts); });
}

}  // namespace qwenqat::experiments
