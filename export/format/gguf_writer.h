// A GGUF v3 writer, this project's own code following the public GGUF
// specification: header (magic "GGUF", version 3, tensor and KV counts), typed
// key/value metadata in insertion order, tensor infos (name, dims innermost
// first, ggml type, offset), then the tensor data, each tensor at an offset
// that is a multiple of the alignment (32, recorded as general.alignment) and
// zero-padded. Written atomically. Torch-free; one writer per thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "export/format/gguf_blocks.h"
#include "export/format/gguf_value.h"

namespace qwenqat::format {

class GgufWriter {
 public:
  // Sets general.alignment = `alignment` (a power of two) as the first key.
  explicit GgufWriter(uint32_t alignment = 32);

  // Adds a key (insertion order is file order). Throws on a duplicate key or
  // an ARRAY whose elements do not all have elem_type.
  void set(const std::string& key, GgufValue value);
  bool has(const std::string& key) const { return keys_.count(key) != 0; }

  // Adds a tensor: `shape` row-major, outermost first (it is written reversed,
  // innermost first, as GGUF wants); `data` holds exactly the ggml bytes of
  // that many elements of `type` (checked). Throws on duplicate names.
  void add_tensor(const std::string& name, const std::vector<int64_t>& shape, GgmlType type,
                  std::vector<uint8_t> data);
  // Convenience: float32 data as F32, or rounded to F16 (ties to even).
  void add_float_tensor(const std::string& name, const std::vector<int64_t>& shape,
                        const float* data, GgmlType type);

  size_t num_tensors() const { return tensors_.size(); }
  // Writes the file atomically; throws naming `path` on I/O errors.
  void write(const std::filesystem::path& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    GgmlType type;
    std::vector<uint8_t> data;
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> keys_;
  std::vector<Tensor> tensors_;
  std::map<std::string, size_t> names_;
};

}  // namespace qwenqat::format
