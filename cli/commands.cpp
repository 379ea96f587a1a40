// The list of subcommand registrations, one line per library.
#include "cli/commands.h"

namespace qwenqat::cli {

void register_all(CLI::App& app) {
  (void)app;
}

}  // namespace qwenqat::cli
