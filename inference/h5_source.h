// H5Source: the engine's WeightSource over a qwenqat .h5 export
// (format::H5ModelFile): packed tensors are used in place from the memory map
// (zero-copy), float tensors are converted to float32 when the model is built.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "export/format/h5_model_reader.h"
#include "inference/weights.h"

namespace qwenqat::engine {

// Read-only after construction; safe to share between threads.
class H5Source : public WeightSource {
 public:
  // Opens and validates the file (format version, layout, byte ranges);
  // throws qwenqat::Error naming the file and what is wrong.
  explicit H5Source(const std::filesystem::path& path);
  models::Qwen2Config config() const override { return config_; }
  std::optional<SourceTensor> find(const std::string& name) const override;
  std::string origin() const override { return file_.path().string(); }
  std::string tokenizer_json() const override { return file_.tokenizer_json_text(); }
  std::string tokenizer_config_json() const override { return file_.tokenizer_config_text(); }
  // The prompt template recorded at export ("" when absent).
  const std::string& prompt_template() const { return file_.prompt_template(); }

 private:
  format::H5ModelFile file_;
  models::Qwen2Config config_;
};

}  // namespace qwenqat::engine
