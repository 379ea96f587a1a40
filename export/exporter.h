// The exporter: a QAT (or PTQ, `train --steps 0`) checkpoint -> deployable
// files. Torch-free: it reads the checkpoint's safetensors weights, the
// quantizers' "<layer>.weight_fake_quant.scale" / ".offset" tensors (from
// quantizers.safetensors, as `qwenqat train` writes them, or from the model
// file) and quantization.json, and re-derives the integer codes with the same numerics
// the fake-quant forward pass uses (quant::quantize_matrix_with on the
// deployed fp16 scales), so dequantize(export) == fake_quant(weights) exactly.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "models/checkpoint/safetensors.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::exporter {

struct ExportOptions {
  std::filesystem::path model;            // checkpoint dir with quantization.json
  std::filesystem::path out_h5;           // qwenqat HDF5 file ("" = skip)
  std::filesystem::path out_gguf;         // GGUF v3 file ("" = skip)
  std::filesystem::path out_safetensors;  // fake-quantized float HF dir ("" = skip)
  // Unquantized 2-D tensors in the .h5 (embeddings/lm_head left in float).
  // nullopt: the checkpoint's own storage dtype (bf16/f16 are kept as they
  // are, so nothing is lost and the file is half the size), else f32.
  std::optional<models::DType> float_dtype;
  std::string prompt_template;      // "" = from the tokenizer's special tokens
  bool gguf_allow_requant = false;  // requantize schemes GGUF has no type for
  bool gguf_f16 = false;            // unquantized 2-D GGUF weights as F16
  bool progress = true;
};

// One tensor of the model as exported: either float values or quantized.
struct ExportTensor {
  std::string name;            // Hugging Face name, e.g. "lm_head.weight"
  std::vector<int64_t> shape;  // row-major
  std::vector<float> values;   // float tensors (empty when quantized)
  bool quantized = false;
  quant::QuantizedMatrix q;  // when quantized
  int activation_bits = 0;   // per-token input bits the layer trained with (0: float)
};

// Reads the checkpoint into export tensors in Hugging Face order (embed,
// layers, norm, lm_head). Throws qwenqat::Error if quantization.json is
// absent ("checkpoint has no quantization state: run qwenqat train ..."), a
// quantized layer lacks its scale tensor, or shapes disagree (naming the tensor).
std::vector<ExportTensor> load_export_tensors(const std::filesystem::path& model,
                                              Json* quantization_json = nullptr);

// Runs the export described by `options`; returns a JSON summary (files,
// sizes, seconds, GGUF requantization errors if any).
Json run_export(const ExportOptions& options);

// The Hugging Face tensor names of a Qwen2 model with `layers` decoder layers.
std::vector<std::string> qwen2_tensor_names(int64_t layers, bool tied);

}  // namespace qwenqat::exporter
