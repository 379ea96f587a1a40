// `qwenqat export --model CKPT [--out M.h5] [--gguf M.gguf] [--safetensors DIR]`.
#include "export/commands.h"

#include <iostream>
#include <memory>

#include "data/util/check.h"
#include "export/exporter.h"

namespace qwenqat::exporter {

void register_commands(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  auto dtype = std::make_shared<std::string>("auto");
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "export",
      "Export a QAT/PTQ checkpoint (with quantization.json) as a packed qwenqat HDF5 "
      "file, a GGUF file for llama.cpp/Ollama, and/or fake-quantized float safetensors");
  cmd->add_option("--model", o->model, "Checkpoint directory written by `qwenqat train`")
      ->required();
  cmd->add_option("--out", o->out_h5, "Write the qwenqat HDF5 model file here (e.g. model.h5)");
  cmd->add_option("--gguf", o->out_gguf, "Write a GGUF v3 file here (llama.cpp / Ollama)");
  cmd->add_option("--safetensors", o->out_safetensors,
                  "Write the fake-quantized weights as a float32 Hugging Face checkpoint here");
  cmd->add_option("--float-dtype", *dtype,
                  "Storage of unquantized 2-D tensors in the .h5 file: auto (the "
                  "checkpoint's own dtype: bf16/f16 kept exactly, else f32), f32, f16 or bf16 "
                  "(norms and biases are always f32)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "f32", "f16", "bf16"}));
  cmd->add_option("--template", o->prompt_template,
                  "Prompt template name stored in the .h5 file (default: from the tokenizer)");
  cmd->add_flag("--gguf-allow-requant", o->gguf_allow_requant,
                "Requantize schemes with no exact llama.cpp type (to Q8_0 above 4 bits, Q4_0 "
                "otherwise) and report the error, instead of refusing");
  cmd->add_flag("--gguf-f16", o->gguf_f16,
                "Store unquantized 2-D GGUF weights as F16 (default F32)");
  cmd->add_flag("--json", *json, "Print the summary as JSON");
  cmd->callback([o, dtype, json] {
    if (*dtype != "auto") {
      o->float_dtype = *dtype == "f16"    ? models::DType::kF16
                       : *dtype == "bf16" ? models::DType::kBF16
                                          : models::DType::kF32;
    }
    o->progress = !*json;
    const Json s = run_export(*o);
    if (*json) {
      std::cout << s.dump(2) << "\n";
      return;
    }
    for (const char* k : {"h5", "gguf", "safetensors"})
      if (s.contains(k)) {
        std::cout << k << ": " << s[k]["path"].get<std::string>();
        if (s[k].contains("bytes"))
          std::cout << " (" << s[k]["bytes"].get<int64_t>() / 1e6 << " MB)";
        std::cout << "\n";
      }
    if (s.contains("gguf"))
      for (const auto& r : s["gguf"]["requantized"])
        std::cout << "  requantized " << r["tensor"].get<std::string>() << " "
                  << r["from"].get<std::string>() << " -> " << r["to"].get<std::string>()
                  << ", relative RMS error " << r["relative_rms_error"].get<double>() << "\n";
    if (s.contains("gguf") && s["gguf"].contains("note"))
      std::cout << "  note: " << s["gguf"]["note"].get<std::string>() << "\n";
    std::cout << "export took " << s["seconds"].get<double>() << " s\n";
  });
}

}  // namespace qwenqat::exporter
