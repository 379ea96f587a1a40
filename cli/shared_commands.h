// Subcommands that combine libraries which must not depend on each other
// (`inspect`, `logits`): see shared_commands.cpp.
#pragma once

#include <CLI/CLI.hpp>

namespace qwenqat::cli {

// Adds `inspect` and `logits` to `app`.
void register_shared_commands(CLI::App& app);

}  // namespace qwenqat::cli
