// H5ModelWriter: writes the qwenqat HDF5 model file (normative layout:
// docs/FORMAT.md, "The qwenqat HDF5 file"): root attributes naming the format
// and its version, the model's text files (config.json, tokenizer.json,
// tokenizer_config.json, quantization config) as uint8 datasets, the prompt
// template name, and one group per tensor under /tensors/<Hugging Face name>
// holding either a float dataset (f32 / f16 / bf16) or the packed codes, fp16
// scales and (asymmetric) fp16 offsets of a quantized matrix. Torch-free.
//
// Every dataset is contiguous, uncompressed, allocated early and written in
// full, with no object timestamps, so a reader can memory-map it and the same
// content gives a byte-identical file (unless a creation timestamp is asked for).
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "export/format/h5_util.h"
#include "export/format/packed_tensor.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::format {

inline constexpr const char* kH5FormatName = "qwenqat";
inline constexpr int64_t kH5FormatVersionMajor = 1;
// 1.1 adds the optional tensor attribute activation_bits (absent = 0).
inline constexpr int64_t kH5FormatVersionMinor = 1;
inline constexpr const char* kH5WriterName = "qwenqat 0.1.0";
// Every HDF5 allocation is aligned to this many bytes (so each dataset's data,
// mapped from the file, is 64-byte aligned for SIMD loads).
inline constexpr int64_t kH5Alignment = 64;

// Names of the root text datasets.
inline constexpr const char* kH5ConfigJson = "config.json";
inline constexpr const char* kH5TokenizerJson = "tokenizer.json";
inline constexpr const char* kH5TokenizerConfigJson = "tokenizer_config.json";
inline constexpr const char* kH5QuantizationConfigJson = "quantization_config.json";

struct H5WriterOptions {
  // Adds a root attribute "created" (UTC, ISO 8601). Off by default: with it
  // the file is no longer byte-identical between two exports.
  bool write_created_timestamp = false;
};

// Writes one model file. The content goes to temp_path_for(path) and is
// renamed over `path` by commit(); if the writer is destroyed without commit()
// (an exception, say) the temp file is removed and `path` is left untouched.
// Not thread-safe (HDF5 is not): use from one thread, and not concurrently with
// another HDF5 user in the process.
class H5ModelWriter {
 public:
  // Creates the temp file; throws qwenqat::Error naming `path` if it cannot.
  explicit H5ModelWriter(std::filesystem::path path, H5WriterOptions options = {});
  ~H5ModelWriter();
  H5ModelWriter(const H5ModelWriter&) = delete;
  H5ModelWriter& operator=(const H5ModelWriter&) = delete;

  // Text members. JSON texts are checked to parse (error names the member);
  // each may be set once. config.json is required before commit(); the others
  // are optional.
  void set_config_json(std::string_view text);
  void set_tokenizer_json(std::string_view text);
  void set_tokenizer_config_json(std::string_view text);
  void set_quantization_config_json(std::string_view text);
  // The prompt template name (e.g. "deepseek-r1"); stored as root attribute.
  void set_prompt_template(const std::string& name);

  // A float tensor. dtype: kF32, kF16 or kBF16; bytes: numel(shape) elements of
  // that dtype, little-endian, row-major; shape: rank >= 1, no zero dims.
  // Names are unique, non-empty, without '/'.
  void add_float_tensor(const std::string& name, models::DType dtype,
                        const std::vector<int64_t>& shape, std::span<const uint8_t> bytes);
  // Same, converting float32 values to `dtype` (round to nearest even).
  void add_float_tensor_f32(const std::string& name, models::DType dtype,
                            const std::vector<int64_t>& shape, std::span<const float> values);
  // A packed quantized matrix [rows, cols] (layout of packed_tensor.h); the view's
  // sizes are checked against its spec.
  void add_packed_tensor(const std::string& name, const PackedView& packed);
  // Records that the layer of the 2-D tensor `name` (added before) was trained
  // with per-token dynamic activation quantization of `bits` (2..8) bits:
  // attribute "activation_bits" on its group. Not called = float inputs.
  void set_activation_bits(const std::string& name, int bits);

  // Closes the file and renames it to `path`. Throws (and removes the temp file)
  // if config.json was not set or HDF5 fails to flush.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  size_t tensor_count() const { return names_.size(); }

 private:
  void set_text(const char* member, std::string_view text, bool json);
  h5::Id create_tensor_group(const std::string& name, const char* kind);
  void discard() noexcept;

  std::filesystem::path path_, temp_;
  h5::Id file_, tensors_;
  std::set<std::string> names_;
  std::set<std::string> texts_;
  bool has_template_ = false;
  bool committed_ = false;
};

}  // namespace qwenqat::format
