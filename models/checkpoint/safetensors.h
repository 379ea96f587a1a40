// Hugging Face safetensors: a validated, memory-mapped reader (single files and
// sharded checkpoints with model.safetensors.index.json) and an atomic writer.
// Torch-free: shared by the LibTorch model and the native engine.
//
// File layout: u64 little-endian header length N, N bytes of JSON
// {"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {str: str}}, then the data block; offsets are relative to
// the data block. Everything is validated before any tensor is handed out.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/util/file_io.h"

namespace qwenqat::models {

enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

size_t dtype_size(DType d);
const char* dtype_name(DType d);  // safetensors spelling: "F32", "BF16", ...
// Throws naming `origin` and listing the supported names when unknown.
DType parse_dtype(const std::string& s, const std::string& origin);

// A view of one tensor inside a mapped file. `data` stays valid as long as the
// SafetensorsFile / Checkpoint that produced it lives. Row-major, unaligned
// (safetensors gives no alignment guarantee: use memcpy or convert_to_f32).
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t numel() const;
};

// Converts F32/F16/BF16 (and F64) elements to float32. out: numel() floats.
void convert_to_f32(const TensorView& t, float* out);
std::vector<float> to_f32(const TensorView& t);

class SafetensorsFile {
 public:
  // Maps and validates `path`; throws qwenqat::Error naming the file (and
  // the tensor) on any inconsistency.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::vector<TensorView>& tensors() const { return tensors_; }  // file order
  const TensorView* find(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return file_.path(); }
  const MappedFile& mapped() const { return file_; }  // the whole file's map

 private:
  MappedFile file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a Hugging Face model: `path` is a directory holding
// model.safetensors or model.safetensors.index.json (+ shards), or a single
// .safetensors file. Tensor names are unique across shards (checked).
class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& path);
  const TensorView* find(const std::string& name) const;
  // Throws "tensor NAME is missing from PATH" when absent.
  const TensorView& get(const std::string& name) const;
  std::vector<std::string> names() const;  // sorted
  size_t total_bytes() const;
  const std::filesystem::path& path() const { return path_; }
  // Drops the resident pages of `t`'s bytes (MappedFile::release) once they
  // have been copied out, so loading a large model does not keep the file in
  // RSS. `t` stays readable (pages are re-read on access).
  void release(const TensorView& t) const {
    for (const auto& f : files_) {
      const MappedFile& m = f->mapped();
      if (t.data >= m.data() && t.data + t.nbytes <= m.data() + m.size()) {
        m.release(t.data, t.nbytes);
        return;
      }
    }
  }

 private:
  std::filesystem::path path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> by_name_;
};

// A tensor to write: bytes must hold numel(shape) * dtype_size(dtype) bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;
};

// Writes a single safetensors file atomically, tensors in the given order
// (data 8-byte aligned by padding the header with spaces, as HF does).
// metadata defaults to {"format": "pt"} so transformers loads it.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       std::map<std::string, std::string> metadata = {{"format", "pt"}});

}  // namespace qwenqat::models
