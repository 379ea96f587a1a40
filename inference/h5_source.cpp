// H5Source over format::H5ModelFile.
#include "inference/h5_source.h"

namespace qwenqat::engine {

H5Source::H5Source(const std::filesystem::path& path) : file_(path), config_(file_.config()) {}

std::optional<SourceTensor> H5Source::find(const std::string& name) const {
  const format::H5Tensor* t = file_.find(name);
  if (!t) return std::nullopt;
  SourceTensor s;
  s.shape = t->shape;
  s.quantized = t->quantized;
  if (t->quantized) {
    s.packed = t->packed;
  } else {
    s.view = t->data;
  }
  return s;
}

}  // namespace qwenqat::engine
