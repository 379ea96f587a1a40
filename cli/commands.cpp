// The list of subcommand registrations, one line per library.
#include "cli/commands.h"

#include "cli/shared_commands.h"

#include "data/commands.h"
#include "export/commands.h"
#include "export/format/gguf_commands.h"
#include "inference/commands.h"
#include "models/commands.h"
#include "qat/commands.h"
#include "experiments/commands.h"
#include "experiments/eval/eval_commands.h"
#include "experiments/sweep/report_commands.h"

namespace qwenqat::cli {

void register_all(CLI::App& app) {
  data::register_commands(app);
  engine::register_commands(app);
  models::register_commands(app);
  qat::register_commands(app);
  experiments::register_commands(app);
  experiments::register_eval_commands(app);
  experiments::register_report_commands(app);
  format::register_gguf_commands(app);
  exporter::register_commands(app);
  register_shared_commands(app);
}

}  // namespace qwenqat::cli
