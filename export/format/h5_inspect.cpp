// Implementation of h5_inspect.h.
#include "export/format/h5_inspect.h"

#include <cstdio>
#include <map>

#include "data/util/check.h"
#include "export/format/h5_model_reader.h"

namespace qwenqat::format {

namespace {

const char* const kClassOrder[] = {"embeddings", "attention", "mlp", "head", "other"};

std::string class_title(const std::string& c) {
  if (c == "mlp") return "MLP";
  if (c == "other") return "norms/other";
  return c;
}

double bits_per_weight(int64_t bytes, int64_t params) {
  return params > 0 ? 8.0 * double(bytes) / double(params) : 0.0;
}

std::string human_bytes(int64_t b) {
  char buf[64];
  if (b >= (int64_t(1) << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(int64_t(1) << 30));
  } else if (b >= (int64_t(1) << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(int64_t(1) << 20));
  } else if (b >= 1024) {
    std::snprintf(buf, sizeof buf, "%.2f KiB", double(b) / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  }
  return buf;
}

std::string shape_str(const Json& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + std::to_string(shape[i].get<int64_t>());
  }
  return s + "]";
}

Json model_summary(const std::string& config_text, const std::string& path) {
  Json summary = Json::object();
  const Json c = parse_json(config_text, path + ":config.json");
  for (const char* key : {"model_type", "hidden_size", "num_hidden_layers", "vocab_size"}) {
    summary[key] = c.contains(key) ? c[key] : Json();
  }
  return summary;
}

}  // namespace

std::string tensor_class(const std::string& name) {
  if (name.rfind("model.embed_tokens.", 0) == 0) return "embeddings";
  if (name.rfind("lm_head.", 0) == 0) return "head";
  if (name.find(".self_attn.") != std::string::npos) return "attention";
  if (name.find(".mlp.") != std::string::npos) return "mlp";
  return "other";
}

Json inspect_model_file(const std::filesystem::path& path) {
  const H5ModelFile file(path);
  Json r;
  r["file"] = path.string();
  r["file_bytes"] = int64_t(file.file_size());
  r["format_version"] = std::to_string(file.format_version_major()) + "." +
                        std::to_string(file.format_version_minor());
  r["writer"] = file.writer();
  r["created"] = file.created() ? Json(*file.created()) : Json();
  r["prompt_template"] = file.prompt_template();
  r["model"] = model_summary(file.config_text(), path.string());
  r["quantization_config"] = file.quantization_config();

  struct Sum {
    int64_t tensors = 0, params = 0, bytes = 0;
  };
  std::map<std::string, Sum> sums;
  Sum total;
  Json tensors = Json::array();
  for (const H5Tensor& t : file.tensors()) {
    const int64_t params = t.numel(), bytes = int64_t(t.file_bytes);
    const std::string cls = tensor_class(t.name);
    tensors.push_back({{"name", t.name},
                       {"class", cls},
                       {"scheme", t.scheme()},
                       {"activation_bits", t.activation_bits},
                       {"shape", t.shape},
                       {"params", params},
                       {"bytes", bytes},
                       {"bits_per_weight", bits_per_weight(bytes, params)},
                       {"bf16_bytes", 2 * params}});
    for (Sum* s : {&sums[cls], &total}) {
      s->tensors += 1;
      s->params += params;
      s->bytes += bytes;
    }
  }
  r["tensors"] = std::move(tensors);
  Json classes = Json::array();
  for (const char* cls : kClassOrder) {
    auto it = sums.find(cls);
    if (it == sums.end()) continue;
    const Sum& s = it->second;
    classes.push_back({{"class", cls},
                       {"tensors", s.tensors},
                       {"params", s.params},
                       {"bytes", s.bytes},
                       {"bits_per_weight", bits_per_weight(s.bytes, s.params)},
                       {"bf16_bytes", 2 * s.params}});
  }
  r["classes"] = std::move(classes);
  const int64_t file_bytes = int64_t(file.file_size());
  r["totals"] = {{"tensors", total.tensors},
                 {"params", total.params},
                 {"tensor_bytes", total.bytes},
                 {"bf16_bytes", 2 * total.params},
                 {"bits_per_weight", bits_per_weight(total.bytes, total.params)},
                 {"file_bytes", file_bytes},
                 {"metadata_bytes", file_bytes - total.bytes},
                 {"file_to_bf16_ratio",
                  total.params > 0 ? double(file_bytes) / double(2 * total.params) : 0.0}};
  return r;
}

std::string inspect_table(const Json& r) {
  QWENQAT_CHECK(
      r.is_object() && r.contains("tensors") && r.contains("classes") && r.contains("totals"),
      "inspect_table: the report is not one made by inspect_model_file");
  std::string out;
  char line[512];
  auto str = [](const Json& j) { return j.is_string() ? j.get<std::string>() : j.dump(); };
  out += "qwenqat model file " + str(r["file"]) + " (format " + str(r["format_version"]) +
         ", written by " + str(r["writer"]) + ")\n";
  if (!r["created"].is_null()) out += "created: " + str(r["created"]) + "\n";
  if (!str(r["prompt_template"]).empty())
    out += "prompt template: " + str(r["prompt_template"]) + "\n";
  const Json& m = r["model"];
  out += "model: " + str(m["model_type"]) + ", " + str(m["num_hidden_layers"]) +
         " layers, hidden " + str(m["hidden_size"]) + ", vocab " + str(m["vocab_size"]) + "\n\n";

  std::snprintf(line, sizeof line, "%-52s %-11s %-16s %14s %8s\n", "tensor", "scheme", "shape",
                "bytes", "bits/w");
  out += line;
  for (const Json& t : r["tensors"]) {
    // "+a8": the layer's inputs are quantized per token (trained that way).
    std::string scheme = t["scheme"].get<std::string>();
    if (t.value("activation_bits", 0) > 0)
      scheme += "+a" + std::to_string(t["activation_bits"].get<int>());
    std::snprintf(line, sizeof line, "%-52s %-11s %-16s %14lld %8.3f\n",
                  t["name"].get<std::string>().c_str(), scheme.c_str(),
                  shape_str(t["shape"]).c_str(), static_cast<long long>(t["bytes"].get<int64_t>()),
                  t["bits_per_weight"].get<double>());
    out += line;
  }
  out += "\n";
  std::snprintf(line, sizeof line, "%-12s %8s %15s %14s %8s %14s\n", "class", "tensors", "params",
                "bytes", "bits/w", "bf16 bytes");
  out += line;
  auto row = [&](const std::string& title, const Json& s, const char* bytes_key) {
    std::snprintf(line, sizeof line, "%-12s %8lld %15lld %14lld %8.3f %14lld\n", title.c_str(),
                  static_cast<long long>(s["tensors"].get<int64_t>()),
                  static_cast<long long>(s["params"].get<int64_t>()),
                  static_cast<long long>(s[bytes_key].get<int64_t>()),
                  s["bits_per_weight"].get<double>(),
                  static_cast<long long>(s["bf16_bytes"].get<int64_t>()));
    out += line;
  };
  for (const Json& c : r["classes"]) row(class_title(c["class"].get<std::string>()), c, "bytes");
  const Json& tot = r["totals"];
  row("total", tot, "tensor_bytes");
  const int64_t file_bytes = tot["file_bytes"].get<int64_t>();
  const int64_t bf16 = tot["bf16_bytes"].get<int64_t>();
  std::snprintf(line, sizeof line,
                "\nfile size %lld bytes (%s; %s of it metadata, config and tokenizer)\n"
                "bf16 size %lld bytes (%s): the file is %.3fx the bf16 size (%.2fx smaller)\n",
                static_cast<long long>(file_bytes), human_bytes(file_bytes).c_str(),
                human_bytes(tot["metadata_bytes"].get<int64_t>()).c_str(),
                static_cast<long long>(bf16), human_bytes(bf16).c_str(),
                tot["file_to_bf16_ratio"].get<double>(),
                file_bytes > 0 ? double(bf16) / double(file_bytes) : 0.0);
  out += line;
  return out;
}

}  // namespace qwenqat::format
