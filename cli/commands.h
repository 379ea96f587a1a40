// Registers every library's subcommands on the app (defined in commands.cpp).
#pragma once

#include <CLI/CLI.hpp>

namespace qwenqat::cli {
void register_all(CLI::App& app);
}
