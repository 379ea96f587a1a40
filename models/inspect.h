// `qwenqat inspect` for Hugging Face checkpoints (torch-free): a summary of a
// model directory or .safetensors file as JSON, and a human-readable table of
// it. The CLI's inspect command (cli/) dispatches here for checkpoints.
#pragma once

#include <filesystem>
#include <string>

#include "data/util/json_io.h"

namespace qwenqat::models {

// path: a model directory (model.safetensors or a sharded index) or one
// .safetensors file. Returns
//   {"path", "files": [..], "config": {HF fields + "num_parameters"} (only
//    when config.json is found beside the weights),
//    "tensor_count", "parameter_count", "total_bytes",
//    "bytes_by_dtype": {"BF16": n, ..}, "tensors_by_dtype": {"BF16": n, ..},
//    "config_parameter_count_matches": bool (with a config)}.
// Validates the files (throws qwenqat::Error naming the file/tensor).
Json inspect_checkpoint(const std::filesystem::path& path);

// Renders inspect_checkpoint()'s result as aligned text lines.
std::string inspect_checkpoint_table(const Json& info);

}  // namespace qwenqat::models
