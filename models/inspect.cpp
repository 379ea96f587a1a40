// Implementation of models/inspect.h (torch-free): summarizes a checkpoint's
// config and tensors.
#include "models/inspect.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "models/checkpoint/qwen2_config.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::models {
namespace fs = std::filesystem;

Json inspect_checkpoint(const fs::path& path) {
  const Checkpoint ckpt(path);
  Json info;
  info["path"] = path.string();
  std::map<std::string, int64_t> bytes_by_dtype, tensors_by_dtype;
  int64_t params = 0;
  for (const auto& name : ckpt.names()) {
    const TensorView& t = ckpt.get(name);
    params += t.numel();
    bytes_by_dtype[dtype_name(t.dtype)] += static_cast<int64_t>(t.nbytes);
    tensors_by_dtype[dtype_name(t.dtype)] += 1;
  }
  info["tensor_count"] = ckpt.names().size();
  info["parameter_count"] = params;
  info["total_bytes"] = ckpt.total_bytes();
  info["bytes_by_dtype"] = bytes_by_dtype;
  info["tensors_by_dtype"] = tensors_by_dtype;
  const fs::path dir = fs::is_directory(path) ? path : path.parent_path();
  if (fs::is_regular_file(dir / "config.json")) {
    const Qwen2Config c = Qwen2Config::load(dir / "config.json");
    Json cj = c.to_json();
    cj["num_parameters"] = c.num_parameters();
    info["config"] = cj;
    info["config_parameter_count_matches"] = c.num_parameters() == params;
  }
  return info;
}

namespace {
std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1000.0 && u < 4) {
    b /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
  return buf;
}
}  // namespace

std::string inspect_checkpoint_table(const Json& info) {
  std::ostringstream os;
  auto row = [&os](const std::string& k, const std::string& v) {
    os << k << std::string(k.size() < 26 ? 26 - k.size() : 1, ' ') << v << "\n";
  };
  row("path", info.value("path", ""));
  if (info.contains("config")) {
    const Json& c = info["config"];
    for (const char* f : {"model_type", "vocab_size", "hidden_size", "intermediate_size",
                          "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                          "head_dim", "tie_word_embeddings", "rope_theta", "rms_norm_eps",
                          "max_position_embeddings", "torch_dtype", "num_parameters"}) {
      if (c.contains(f)) row(std::string("config.") + f, c[f].dump());
    }
  } else {
    row("config", "(no config.json beside the weights)");
  }
  row("tensor_count", info["tensor_count"].dump());
  row("parameter_count", info["parameter_count"].dump());
  row("total_bytes", info["total_bytes"].dump() + " (" +
                         human_bytes(info["total_bytes"].get<double>()) + ")");
  for (const auto& [dtype, bytes] : info["bytes_by_dtype"].items()) {
    row("bytes." + dtype, bytes.dump() + " (" + human_bytes(bytes.get<double>()) + ", " +
                              info["tensors_by_dtype"][dtype].dump() + " tensors)");
  }
  if (info.contains("config_parameter_count_matches")) {
    row("matches_config", info["config_parameter_count_matches"].get<bool>() ? "yes" : "NO");
  }
  return os.str();
}

}  // namespace qwenqat::models
