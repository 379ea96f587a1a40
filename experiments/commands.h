// The experiments library's subcommands: `qwenqat demo` (the main job).
#pragma once

#include <CLI/CLI.hpp>

namespace qwenqat::experiments {

// Adds `demo` to `app`.
void register_commands(CLI::App& app);

}  // namespace qwenqat::experiments
