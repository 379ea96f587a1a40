// `qwenqat report`: turns a sweep's results.jsonl (optionally merged from
// shard result files first) into the Markdown table and the
// accuracy-versus-size plot (PNG + SVG).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "data/util/json_io.h"

namespace qwenqat::experiments {

struct ReportOptions {
  std::filesystem::path results_dir;         // holds results.jsonl; outputs go here
  std::vector<std::filesystem::path> merge;  // shard results to merge into it first
  std::string metric = "auto";               // plot y axis
  bool plot = true;
  bool json = false;
  std::string title;
};

// Runs the report; prints the table (or JSON with --json) to stdout. Throws
// qwenqat::Error on bad input.
void run_report(const ReportOptions& options);

// What run_report writes, without printing: merges, writes results.md and
// (if options.plot) the plot; returns the Markdown table and the JSON that
// `--json` prints ({"table": path, "rows", "plot"}).
struct ReportResult {
  std::string markdown;
  Json json;
};
ReportResult write_report(const ReportOptions& options);

// Adds the `report` subcommand.
void register_report_commands(CLI::App& app);

}  // namespace qwenqat::experiments
