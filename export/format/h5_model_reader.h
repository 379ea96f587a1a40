// H5ModelFile: reads a qwenqat HDF5 model file (layout: docs/FORMAT.md, "The
// qwenqat HDF5 file"). The HDF5 library validates the structure and gives each
// dataset's file offset; the whole file is then memory-mapped once and tensors
// are handed out as zero-copy pointers into the map: float tensors as
// models::TensorView (F32 / F16 / BF16), quantized matrices as format::PackedView.
// Torch-free; shared by inspect and the native engine.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "export/format/packed_tensor.h"
#include "models/checkpoint/qwen2_config.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::format {

// One tensor of the file. Pointers point into the H5ModelFile's memory map and
// are valid as long as that object lives. Every dataset is 64-byte aligned when
// written by qwenqat (checked: at least the element alignment).
struct H5Tensor {
  std::string name;  // Hugging Face name, e.g. "model.layers.0.mlp.up_proj.weight"
  bool quantized = false;
  std::vector<int64_t> shape;  // logical shape ([rows, cols] when quantized)
  models::TensorView data;     // float tensors: dtype kF32/kF16/kBF16, shape, bytes
  PackedView packed;           // quantized tensors: codes, scales, offsets
  uint64_t file_bytes = 0;     // bytes of its datasets in the file (codes+scales+offsets)
  // Per-token dynamic activation bits the layer was trained with (format 1.1
  // attribute; 0 = float inputs, else 2..8 and the tensor is 2-D).
  int activation_bits = 0;

  int64_t numel() const;
  // "f32" / "f16" / "bf16" for float tensors, the QuantSpec name ("w4g32") otherwise.
  std::string scheme() const;
};

// An opened model file. Construction validates everything (root attributes,
// format name and major version, every tensor's attributes, datasets, layout,
// shapes and byte ranges) and throws qwenqat::Error naming the file and the
// tensor or member at fault; afterwards accessors do not fail except on
// missing names. Construction uses HDF5 (not thread-safe: one thread at a
// time); the constructed object is read-only and safe to share between threads.
class H5ModelFile {
 public:
  // `mode`: map the file or copy it into memory (MappedFile).
  explicit H5ModelFile(const std::filesystem::path& path, MapMode mode = MapMode::kMap);
  H5ModelFile(H5ModelFile&&) = default;
  H5ModelFile& operator=(H5ModelFile&&) = default;

  const std::filesystem::path& path() const { return map_.path(); }
  uint64_t file_size() const { return map_.size(); }
  int64_t format_version_major() const { return version_major_; }
  int64_t format_version_minor() const { return version_minor_; }
  const std::string& writer() const { return writer_; }
  const std::optional<std::string>& created() const { return created_; }
  const std::string& prompt_template() const { return prompt_template_; }  // "" if absent

  // The stored texts, byte for byte ("" when an optional member is absent).
  const std::string& config_text() const { return config_text_; }
  const std::string& tokenizer_json_text() const { return tokenizer_text_; }
  const std::string& tokenizer_config_text() const { return tokenizer_config_text_; }
  const std::string& quantization_config_text() const { return quant_config_text_; }
  // config.json parsed and validated (throws naming the file on bad content).
  models::Qwen2Config config() const;
  // The quantization config JSON (null when absent).
  Json quantization_config() const;

  const std::vector<H5Tensor>& tensors() const { return tensors_; }  // sorted by name
  const H5Tensor* find(const std::string& name) const;
  // Throws "tensor NAME is not in FILE" when absent.
  const H5Tensor& get(const std::string& name) const;

  // A quantized tensor unpacked to one code per byte (throws if it is a float tensor).
  quant::QuantizedMatrix quantized_matrix(const std::string& name) const;
  // Any tensor as float32 values (row-major, numel() floats): float tensors
  // converted, quantized ones dequantized with quant::dequantize_one's formulas.
  std::vector<float> to_f32(const std::string& name) const;

  const MappedFile& mapped() const { return map_; }

 private:
  MappedFile map_;
  int64_t version_major_ = 0, version_minor_ = 0;
  std::string writer_, prompt_template_;
  std::optional<std::string> created_;
  std::string config_text_, tokenizer_text_, tokenizer_config_text_, quant_config_text_;
  std::vector<H5Tensor> tensors_;
  std::map<std::string, size_t> index_;
};

}  // namespace qwenqat::format
