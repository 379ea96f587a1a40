// A validated, memory-mapped GGUF reader (versions 2 and 3; the format of
// llama.cpp and Ollama): metadata of every value type, tensor infos, alignment
// (general.alignment, default 32) and tensor data, with conversion of F32, F16,
// BF16, Q8_0, Q4_0 and Q4_1 tensors to float. Torch-free.
//
// Everything in the header and tensor infos is validated on open (magic,
// version, counts bounded by the file size, string lengths, types, dims and
// their product, alignment, every tensor's data inside the file), so a
// GgufFile that constructed is safe to read. Errors name the file and the key
// or tensor. Read-only after construction: safe to share between threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/util/file_io.h"
#include "export/format/gguf_blocks.h"
#include "export/format/gguf_value.h"

namespace qwenqat::format {

inline constexpr uint32_t kGgufDefaultAlignment = 32;

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGUF order: innermost (contiguous) first, ne[0], ne[1], ...
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;            // relative to the data section
  const uint8_t* data = nullptr;  // into the map; valid while the GgufFile lives
  size_t nbytes = 0;
  int64_t numel() const;
  // Row-major shape, outermost first (Hugging Face / PyTorch order): dims reversed.
  std::vector<int64_t> shape() const;
};

class GgufFile {
 public:
  // Maps and validates `path`; throws qwenqat::Error naming the file.
  explicit GgufFile(const std::filesystem::path& path);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of tensor data
  const std::filesystem::path& path() const { return file_.path(); }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  // Throws "GGUF key KEY is missing from PATH" when absent.
  const GgufValue& get(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }  // file order
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const GgufTensorInfo& get_tensor(const std::string& name) const;

  // The tensor as numel() floats (row-major, GGUF element order). Throws naming
  // the tensor and its type for types other than F32/F16/BF16/Q8_0/Q4_0/Q4_1.
  std::vector<float> to_f32(const GgufTensorInfo& t) const;

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace qwenqat::format
