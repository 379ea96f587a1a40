// open_weight_source: picks the source for a --model path.
#include <filesystem>

#include "data/util/check.h"
#include "inference/h5_source.h"
#include "inference/model.h"

namespace qwenqat::engine {

std::shared_ptr<const WeightSource> open_weight_source(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  QWENQAT_CHECK(fs::exists(path), "--model ", path.string(),
                " does not exist; give a Hugging Face checkpoint directory or a .h5 export");
  if (fs::is_directory(path)) return std::make_shared<CheckpointSource>(path);
  if (path.extension() == ".h5") return std::make_shared<H5Source>(path);
  if (path.extension() == ".safetensors") {
    fail("--model ", path.string(),
         ": give the checkpoint's directory (the engine needs config.json beside the weights)");
  }
  fail("--model ", path.string(),
       ": not a Hugging Face checkpoint directory (config.json + model.safetensors) nor a .h5 "
       "export");
}

}  // namespace qwenqat::engine
