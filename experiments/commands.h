// The experiments library's subcommands: `qwenqat demo` (the main job: the
// tiny end-to-end experiment, tiny_experiment.h) and `qwenqat sweep`
// (pipeline.h).
#pragma once

#include <CLI/CLI.hpp>

namespace qwenqat::experiments {

// Adds `demo` and `sweep` to `app`.
void register_commands(CLI::App& app);

}  // namespace qwenqat::experiments
