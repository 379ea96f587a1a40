// `qwenqat gguf-info`: prints a GGUF file's header, metadata and (optionally)
// tensor table, as text or JSON; every file is fully validated by GgufFile
// first, so the command doubles as a checker for exported files.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <string>

#include "data/util/json_io.h"

namespace qwenqat::format {

struct GgufInfoOptions {
  std::filesystem::path file;
  bool tensors = false;   // include the tensor table
  bool json = false;      // JSON instead of text
  int64_t max_array = 8;  // array elements shown per key; 0 = all
};

// The description as JSON: {"file", "version", "alignment", "data_offset",
// "tensor_count", "metadata": {key: {"type": "ARRAY[STRING]", "count": n,
// "value": ...}}, "tensors": [{"name", "type", "shape", "offset", "bytes"}]}
// ("tensors" only with options.tensors). Throws qwenqat::Error on a bad file.
Json gguf_info_json(const GgufInfoOptions& options);
// The same as aligned text lines.
std::string gguf_info_text(const GgufInfoOptions& options);

// Adds the `gguf-info` subcommand.
void register_gguf_commands(CLI::App& app);

}  // namespace qwenqat::format
