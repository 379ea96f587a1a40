// The subcommands whose work spans libraries that must not depend on each
// other, so they are wired here rather than in one library:
//   qwenqat inspect PATH [--json]   a Hugging Face checkpoint (models/), a
//                                   qwenqat .h5 export (export/format) or a
//                                   GGUF file (export/format)
//   qwenqat logits --model M --ids 1,2,3 [--backend torch|engine]
//                                   the LibTorch model (models/) or the
//                                   torch-free engine (inference/), one JSON
// Each dispatches to the owning library's function; no logic lives here.
#include "cli/shared_commands.h"

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "export/format/gguf_commands.h"
#include "export/format/h5_inspect.h"
#include "inference/commands.h"
#include "models/commands.h"
#include "models/inspect.h"

namespace qwenqat::cli {
namespace fs = std::filesystem;

namespace {

struct InspectOptions {
  fs::path path;
  bool json = false;
};

bool has_extension(const fs::path& p, const char* ext) { return p.extension() == ext; }

void run_inspect(const InspectOptions& o) {
  QWENQAT_CHECK(fs::exists(o.path), "inspect: ", o.path.string(),
                " does not exist (expected a model directory, a .safetensors, .h5 or .gguf file)");
  if (has_extension(o.path, ".h5")) {
    const Json r = format::inspect_model_file(o.path);
    std::cout << (o.json ? r.dump(2) + "\n" : format::inspect_table(r));
    return;
  }
  if (has_extension(o.path, ".gguf")) {
    format::GgufInfoOptions g;
    g.file = o.path;
    g.json = o.json;
    std::cout << (o.json ? format::gguf_info_json(g).dump(2) + "\n" : format::gguf_info_text(g));
    return;
  }
  const Json r = models::inspect_checkpoint(o.path);
  std::cout << (o.json ? r.dump(2) + "\n" : models::inspect_checkpoint_table(r));
}

struct LogitsCommandOptions {
  models::LogitsOptions torch;
  std::string backend = "torch";
  int threads = 1;
};

void run_logits_command(const LogitsCommandOptions& o) {
  if (o.backend == "torch") {
    models::run_logits(o.torch);
    return;
  }
  QWENQAT_CHECK(o.backend == "engine", "--backend must be torch or engine, got '", o.backend,
                "'");
  QWENQAT_CHECK(o.torch.device == "cpu", "--device ", o.torch.device,
                ": the engine backend runs on the CPU only");
  QWENQAT_CHECK(o.torch.dtype == "f32", "--dtype ", o.torch.dtype,
                ": the engine backend computes in float32 (activations) only");
  const auto ids = engine::parse_id_list(o.torch.ids, "--ids");
  const Json out = engine::logits_json(o.torch.model, ids, o.threads);
  if (o.torch.out.empty()) {
    std::cout << out.dump() << "\n";
  } else {
    write_json_file(o.torch.out, out, -1);
  }
}

}  // namespace

void register_shared_commands(CLI::App& app) {
  auto io = std::make_shared<InspectOptions>();
  auto* inspect = app.add_subcommand(
      "inspect",
      "Summarize a model: a Hugging Face checkpoint (config, tensor and parameter counts, bytes "
      "by dtype), a qwenqat .h5 export (per-tensor scheme, bytes, bits per weight, totals by "
      "class, bf16 comparison) or a .gguf file (metadata and tensors)");
  inspect->add_option("path", io->path, "Model directory, .safetensors, .h5 or .gguf file")
      ->required();
  inspect->add_flag("--json", io->json, "Print JSON instead of a table")->capture_default_str();
  inspect->callback([io] { run_inspect(*io); });

  auto lo = std::make_shared<LogitsCommandOptions>();
  auto* logits = app.add_subcommand(
      "logits", "Print the logits of every position as JSON {\"logits\": [[..]]} (float32)");
  logits->add_option("--model", lo->torch.model,
                     "Model directory or .safetensors file (torch); directory or .h5 (engine)")
      ->required();
  logits->add_option("--ids", lo->torch.ids, "Comma-separated token ids, e.g. 1,2,3")->required();
  logits->add_option("--backend", lo->backend,
                     "torch (the LibTorch model) or engine (the native inference engine)")
      ->capture_default_str();
  logits->add_option("--out", lo->torch.out, "Write the JSON here instead of stdout");
  logits->add_option("--dtype", lo->torch.dtype, "Compute dtype (torch): f32, bf16 or f16")
      ->capture_default_str();
  logits->add_option("--device", lo->torch.device, "Device (torch): cpu, cuda or cuda:N")
      ->capture_default_str();
  logits->add_option("--threads", lo->threads, "Engine threads (engine backend), >= 1")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  logits->callback([lo] { run_logits_command(*lo); });
}

}  // namespace qwenqat::cli
