// prepare / convert and the quantization state files of a checkpoint.
#include "qat/prepare.h"

#include <cstring>
#include <set>

#include "data/util/check.h"
#include "data/util/json_io.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::qat {
namespace {

constexpr const char* kFormat = "qwenqat-qat";
constexpr int kFormatVersion = 1;

std::vector<uint16_t> fp16_bits(const torch::Tensor& t) {
  const auto h = t.to(torch::kCPU).to(torch::kHalf).contiguous();
  std::vector<uint16_t> out(size_t(h.numel()));
  std::memcpy(out.data(), h.data_ptr(), out.size() * 2);
  return out;
}

}  // namespace

const PreparedLayer* QatModel::find(const std::string& name) const {
  for (const auto& l : layers_) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

int64_t QatModel::num_quantized() const {
  int64_t n = 0;
  for (const auto& l : layers_) n += l.scheme.quantize;
  return n;
}

void QatModel::set_enabled(bool on) {
  for (auto& l : layers_) {
    if (l.weight_quantizer) l.weight_quantizer->set_enabled(on);
    if (l.input_quantizer) l.input_quantizer->set_enabled(on);
  }
}

std::vector<torch::Tensor> QatModel::scale_parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& l : layers_) {
    if (l.weight_quantizer) {
      for (const auto& p : l.weight_quantizer->parameters()) out.push_back(p);
    }
  }
  return out;
}

std::map<std::string, torch::Tensor> QatModel::quantizer_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& l : layers_) {
    if (!l.weight_quantizer) continue;
    out[l.name + ".weight_fake_quant.scale"] = l.weight_quantizer->scale();
    if (l.weight_quantizer->offset().defined()) {
      out[l.name + ".weight_fake_quant.offset"] = l.weight_quantizer->offset();
    }
  }
  return out;
}

Json QatModel::to_json() const {
  Json j;
  j["format"] = kFormat;
  j["version"] = kFormatVersion;
  j["config"] = config_.to_json();
  j["quantizers_file"] = kQuantizersFile;
  Json layers = Json::object();
  for (const auto& l : layers_) {
    Json e;
    e["weight"] = l.scheme.quantize ? Json(l.scheme.weight.name()) : Json("none");
    e["activation_bits"] = l.scheme.activation_bits;
    layers[l.name] = e;
  }
  j["layers"] = layers;
  return j;
}

QatModel prepare(const std::vector<std::pair<std::string, models::QuantizableLayer>>& layers,
                 const QatConfig& config, bool init_scales) {
  config.validate();
  std::set<std::string> names;
  for (const auto& [name, layer] : layers) names.insert(name);
  for (const auto& o : config.overrides) {
    QWENQAT_CHECK(o.name.empty() || names.count(o.name), "quantization override names layer \"",
                  o.name, "\", which the model does not have (layer names look like "
                  "\"model.layers.0.mlp.down_proj\", \"lm_head\", \"model.embed_tokens\")");
  }
  std::vector<PreparedLayer> out;
  for (const auto& [name, layer] : layers) {
    PreparedLayer p;
    p.name = name;
    p.layer = layer;
    p.scheme = config.scheme_for(name);
    const bool is_embedding = layer->kind() == models::QuantizableImpl::Kind::kEmbedding;
    if (is_embedding) p.scheme.activation_bits = 0;
    if (p.scheme.quantize) {
      WeightQuantOptions wo{p.scheme.weight, config.learnable_scales, config.scale_init};
      p.weight_quantizer = FakeQuantizer(layer->weight(), wo, name, init_scales);
      layer->set_weight_quantizer(p.weight_quantizer.ptr());
    }
    if (p.scheme.activation_bits > 0) {
      p.input_quantizer = ActivationFakeQuantizer(p.scheme.activation_bits);
      layer->set_input_quantizer(p.input_quantizer.ptr());
    }
    out.push_back(std::move(p));
  }
  return QatModel(config, std::move(out));
}

QatModel prepare(models::Qwen2ForCausalLMImpl& model, const QatConfig& config, bool init_scales) {
  return prepare(model.quantizable_layers(), config, init_scales);
}

void unprepare(const QatModel& qat) {
  for (const auto& l : qat.layers()) {
    l.layer->set_weight_quantizer(nullptr);
    if (l.layer->kind() == models::QuantizableImpl::Kind::kLinear) {
      l.layer->set_input_quantizer(nullptr);
    }
  }
}

ConvertedLayer convert_layer(const PreparedLayer& layer) {
  QWENQAT_CHECK(layer.weight_quantizer, "layer ", layer.name, " is not quantized");
  torch::NoGradGuard no_grad;
  const auto& q = layer.weight_quantizer;
  const auto w = layer.layer->weight().detach().to(torch::kCPU, torch::kFloat).contiguous();
  ConvertedLayer c;
  c.name = layer.name;
  c.activation_bits = layer.scheme.activation_bits;
  std::vector<uint16_t> offsets;
  if (q->offset().defined()) offsets = fp16_bits(deployed_offset(q->offset()));
  c.matrix = quant::quantize_matrix_with(w.data_ptr<float>(), w.size(0), w.size(1), q->spec(),
                                         fp16_bits(deployed_scale(q->scale())), std::move(offsets));
  return c;
}

std::vector<ConvertedLayer> convert(const QatModel& qat) {
  std::vector<ConvertedLayer> out;
  for (const auto& l : qat.layers()) {
    if (l.weight_quantizer) out.push_back(convert_layer(l));
  }
  return out;
}

void save_quantization(const QatModel& qat, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  const auto tensors = qat.quantizer_tensors();
  std::vector<torch::Tensor> keep;  // CPU float32 copies alive during the write
  std::vector<models::TensorToWrite> writes;
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.detach().to(torch::kCPU, torch::kFloat).contiguous());
    const auto& c = keep.back();
    writes.push_back({name, models::DType::kF32, c.sizes().vec(),
                      {static_cast<const uint8_t*>(c.data_ptr()), size_t(c.nbytes())}});
  }
  models::write_safetensors(dir / kQuantizersFile, writes);
  write_json_file(dir / kQuantizationJson, qat.to_json());
}

bool has_quantization(const std::filesystem::path& dir) {
  return std::filesystem::exists(dir / kQuantizationJson);
}

QatConfig load_quantization_config(const std::filesystem::path& dir) {
  const auto path = dir / kQuantizationJson;
  const Json j = read_json_file(path);
  QWENQAT_CHECK(j.is_object() && j.value("format", "") == kFormat, path.string(),
                ": not a qwenqat quantization file (expected \"format\": \"", kFormat, "\")");
  QWENQAT_CHECK(j.value("version", 0) == kFormatVersion, path.string(), ": unsupported version ",
                j.value("version", 0), " (this build reads version ", kFormatVersion, ")");
  QWENQAT_CHECK(j.contains("config"), path.string(), ": missing \"config\"");
  return QatConfig::from_json(j["config"], path.string() + " config");
}

QatModel load_quantization(models::Qwen2ForCausalLMImpl& model, const std::filesystem::path& dir) {
  const auto json_path = dir / kQuantizationJson;
  const QatConfig config = load_quantization_config(dir);
  QatModel qat = prepare(model, config, /*init_scales=*/false);
  const Json j = read_json_file(json_path);
  if (j.contains("layers") && j["layers"].is_object()) {
    for (const auto& l : qat.layers()) {
      if (!j["layers"].contains(l.name)) continue;
      const auto& e = j["layers"][l.name];
      const std::string recorded = e.value("weight", "?");
      const std::string now = l.scheme.quantize ? l.scheme.weight.name() : "none";
      QWENQAT_CHECK(recorded == now, json_path.string(), ": layer ", l.name, " was saved as ",
                    recorded, " but the config gives ", now, "; the file is inconsistent");
    }
  }
  const auto file = dir / kQuantizersFile;
  QWENQAT_CHECK(std::filesystem::exists(file), file.string(),
                " is missing (it holds the learned scales named in ", json_path.string(), ")");
  models::SafetensorsFile st(file);
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : qat.quantizer_tensors()) {
    const auto* v = st.find(name);
    QWENQAT_CHECK(v, file.string(), ": tensor ", name, " is missing");
    QWENQAT_CHECK(v->shape == t.sizes().vec(), file.string(), ": tensor ", name, " has shape [",
                  v->shape.size() ? v->shape[0] : 0, ", ...] but the model needs ", t.sizes());
    const auto data = models::to_f32(*v);
    t.copy_(torch::from_blob(const_cast<float*>(data.data()), t.sizes(), torch::kFloat));
  }
  return qat;
}

}  // namespace qwenqat::qat
