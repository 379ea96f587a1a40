// Inspection of a qwenqat HDF5 model file: what `qwenqat inspect MODEL.h5`
// prints. Per tensor: class, scheme, shape, bytes in the file and bits per
// weight including scales and offsets; totals per class (embeddings,
// attention, MLP, head, norms/other); the total and the comparison with the
// same model stored in bf16. Torch-free.
#pragma once

#include <filesystem>
#include <string>

#include "data/util/json_io.h"

namespace qwenqat::format {

// The class a tensor counts toward, from its Hugging Face name:
// "embeddings" (model.embed_tokens.*), "head" (lm_head.*), "attention"
// (*.self_attn.*), "mlp" (*.mlp.*), else "other" (norms and anything else).
std::string tensor_class(const std::string& name);

// Opens and validates `path` (throws qwenqat::Error like H5ModelFile) and
// returns the report:
// {
//   "file": str, "file_bytes": int, "format_version": "1.0", "writer": str,
//   "created": str|null, "prompt_template": str,
//   "model": {"model_type", "hidden_size", "num_hidden_layers", "vocab_size"} (from config.json),
//   "quantization_config": JSON|null,
//   "tensors": [{"name", "class", "scheme", "shape": [int], "params", "bytes",
//                "bits_per_weight", "bf16_bytes"}]   (sorted by name),
//   "classes": [{"class", "tensors", "params", "bytes", "bits_per_weight", "bf16_bytes"}]
//              (order: embeddings, attention, mlp, head, other; empty classes left out),
//   "totals": {"tensors", "params", "tensor_bytes", "bf16_bytes", "bits_per_weight",
//              "file_bytes", "metadata_bytes", "file_to_bf16_ratio"}
// }
// bytes count the tensor's datasets (codes + scales + offsets, or the float data);
// bits_per_weight = 8 * bytes / params; bf16_bytes = 2 * params; metadata_bytes =
// file_bytes - tensor_bytes (HDF5 structure, config and tokenizer texts).
Json inspect_model_file(const std::filesystem::path& path);

// A human-readable rendering of inspect_model_file's report: header, one line
// per tensor, the per-class table and the totals with the bf16 comparison.
std::string inspect_table(const Json& report);

}  // namespace qwenqat::format
