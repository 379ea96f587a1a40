// `qwenqat export`: registers the export subcommand.
#pragma once

#include <CLI/CLI.hpp>

namespace qwenqat::exporter {
void register_commands(CLI::App& app);
}
