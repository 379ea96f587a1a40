// Implementation of gguf_commands.h.
#include "export/format/gguf_commands.h"

#include <iostream>
#include <memory>
#include <sstream>

#include "data/util/check.h"
#include "export/format/gguf_reader.h"

namespace qwenqat::format {
namespace {

Json value_json(const GgufValue& v, int64_t max_array) {
  switch (v.type) {
    case GgufType::kString:
      return v.s;
    case GgufType::kBool:
      return v.u != 0;
    case GgufType::kFloat32:
    case GgufType::kFloat64:
      return v.f;
    case GgufType::kInt8:
    case GgufType::kInt16:
    case GgufType::kInt32:
    case GgufType::kInt64:
      return v.i;
    case GgufType::kArray: {
      Json a = Json::array();
      const size_t n = max_array > 0 ? std::min(v.array.size(), size_t(max_array)) : v.array.size();
      for (size_t i = 0; i < n; ++i) a.push_back(value_json(v.array[i], max_array));
      return a;
    }
    default:
      return v.u;
  }
}

}  // namespace

Json gguf_info_json(const GgufInfoOptions& options) {
  const GgufFile g(options.file);
  Json j;
  j["file"] = options.file.string();
  j["version"] = g.version();
  j["alignment"] = g.alignment();
  j["data_offset"] = g.data_offset();
  j["tensor_count"] = g.tensors().size();
  Json meta = Json::object();
  for (const auto& [key, v] : g.metadata()) {
    Json e;
    e["type"] = v.type_string();
    if (v.type == GgufType::kArray) e["count"] = v.array.size();
    e["value"] = value_json(v, options.max_array);
    meta[key] = std::move(e);
  }
  j["metadata"] = std::move(meta);
  if (options.tensors) {
    Json ts = Json::array();
    for (const auto& t : g.tensors()) {
      ts.push_back({{"name", t.name},
                    {"type", ggml_type_name(uint32_t(t.type))},
                    {"shape", t.shape()},
                    {"offset", t.offset},
                    {"bytes", t.nbytes}});
    }
    j["tensors"] = std::move(ts);
  }
  return j;
}

std::string gguf_info_text(const GgufInfoOptions& options) {
  const Json j = gguf_info_json(options);
  std::ostringstream os;
  os << j["file"].get<std::string>() << ": GGUF v" << j["version"] << ", alignment "
     << j["alignment"] << ", " << j["tensor_count"] << " tensors, data at byte " << j["data_offset"]
     << "\n";
  for (const auto& [key, e] : j["metadata"].items()) {
    os << "  " << key << " [" << e["type"].get<std::string>();
    if (e.contains("count")) os << " x " << e["count"];
    os << "] = ";
    const Json& v = e["value"];
    if (v.is_array() && e["count"].get<size_t>() > v.size()) {
      os << v.dump() << " ...";
    } else {
      os << v.dump();
    }
    os << "\n";
  }
  if (j.contains("tensors")) {
    for (const auto& t : j["tensors"]) {
      os << "  tensor " << t["name"].get<std::string>() << " " << t["type"].get<std::string>()
         << " " << t["shape"].dump() << " " << t["bytes"] << " bytes at +" << t["offset"] << "\n";
    }
  }
  return os.str();
}

void register_gguf_commands(CLI::App& app) {
  auto opts = std::make_shared<GgufInfoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "gguf-info", "Validate a GGUF file (llama.cpp / Ollama) and print its metadata and tensors");
  cmd->add_option("file", opts->file, "GGUF file to inspect")->required();
  cmd->add_flag("--tensors", opts->tensors, "Also list every tensor (name, type, shape, bytes)")
      ->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print JSON (for scripts) instead of text")
      ->capture_default_str();
  cmd->add_option("--max-array", opts->max_array, "Array elements shown per metadata key (0 = all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->callback([opts]() {
    if (opts->json) {
      std::cout << gguf_info_json(*opts).dump(2) << "\n";
    } else {
      std::cout << gguf_info_text(*opts);
    }
  });
}

}  // namespace qwenqat::format
