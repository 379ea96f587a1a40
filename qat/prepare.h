// prepare / convert: attaching fake quantizers to a Qwen2 model in place, and
// turning the trained model into integer codes + fp16 scales for export; plus
// saving and loading the quantization state of a checkpoint:
//   <dir>/quantization.json        format, config (QatConfig JSON), per-layer scheme
//   <dir>/quantizers.safetensors   F32 "<layer>.weight_fake_quant.scale" [rows, groups]
//                                  and ".offset" (asymmetric) for every quantized layer
// The model's own tensors keep their Hugging Face names in model.safetensors
// (written by models::save_model), so a checkpoint stays loadable by
// transformers and by every qwenqat command. Details: docs/QAT.md.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/qwen2_model.h"
#include "qat/fake_quant.h"
#include "qat/qat_config.h"

namespace qwenqat::qat {

inline constexpr const char* kQuantizationJson = "quantization.json";
inline constexpr const char* kQuantizersFile = "quantizers.safetensors";

// One layer that prepare() decided about (quantized or not).
struct PreparedLayer {
  std::string name;  // Hugging Face prefix, e.g. "model.layers.0.mlp.down_proj"
  LayerScheme scheme;
  models::QuantizableLayer layer;          // aliases the model's module
  FakeQuantizer weight_quantizer{nullptr};  // null if !scheme.quantize
  ActivationFakeQuantizer input_quantizer{nullptr};  // null if no activation bits
};

// The result of prepare(): handles on the quantizers attached to the model.
// The model owns the modules; this object only aliases them, so it must not
// outlive the model. Not thread-safe.
class QatModel {
 public:
  QatModel(QatConfig config, std::vector<PreparedLayer> layers)
      : config_(std::move(config)), layers_(std::move(layers)) {}

  const QatConfig& config() const { return config_; }
  const std::vector<PreparedLayer>& layers() const { return layers_; }
  const PreparedLayer* find(const std::string& name) const;
  int64_t num_quantized() const;

  // Turns every attached quantizer on or off (off = the full-precision
  // teacher with the same weights).
  void set_enabled(bool on);
  // The learnable scale / offset parameters (empty with frozen scales).
  std::vector<torch::Tensor> scale_parameters() const;
  // "<layer>.weight_fake_quant.scale" / ".offset" -> tensor (aliases).
  std::map<std::string, torch::Tensor> quantizer_tensors() const;
  // The quantization.json document (format, config, layers).
  Json to_json() const;

 private:
  QatConfig config_;
  std::vector<PreparedLayer> layers_;
};

// Attaches quantizers to `layers` (name, layer) according to `config`:
// a FakeQuantizer as "weight_fake_quant" when the layer's scheme quantizes,
// an ActivationFakeQuantizer as "input_fake_quant" when it has activation
// bits (linear layers only). Scales are initialized from the current weights
// (quant::choose_qparams with config.scale_init) unless `init_scales` is false
// (then they are 1 and must be loaded). Throws qwenqat::Error naming the
// layer when a group size does not divide its input dimension, or when the
// config has an exact-name override that matches no layer (a typo).
QatModel prepare(const std::vector<std::pair<std::string, models::QuantizableLayer>>& layers,
                 const QatConfig& config, bool init_scales = true);
QatModel prepare(models::Qwen2ForCausalLMImpl& model, const QatConfig& config,
                 bool init_scales = true);

// Removes every quantizer from the model's layers (back to a plain model).
void unprepare(const QatModel& qat);

// One converted layer: the integer codes and fp16 parameters of its weight,
// computed from the CURRENT (learned) scales, so that
// dequantize_matrix(matrix) == the fake-quantized weight, bit for bit.
struct ConvertedLayer {
  std::string name;  // layer prefix; the tensor is name + ".weight"
  quant::QuantizedMatrix matrix;
  int activation_bits = 0;
};
ConvertedLayer convert_layer(const PreparedLayer& layer);
// Every quantized layer in model order (layers left in float are omitted).
std::vector<ConvertedLayer> convert(const QatModel& qat);

// Writes quantization.json and quantizers.safetensors into `dir` (atomically,
// each file). The model's weights are written separately (models::save_model).
void save_quantization(const QatModel& qat, const std::filesystem::path& dir);
// True if `dir` holds a quantization.json.
bool has_quantization(const std::filesystem::path& dir);
// Reads the config from dir/quantization.json.
QatConfig load_quantization_config(const std::filesystem::path& dir);
// prepare()s `model` with dir/quantization.json's config and loads the scales
// from dir/quantizers.safetensors. Throws naming the file and tensor when a
// layer's recorded scheme differs from what the config gives or a tensor is
// missing or misshapen.
QatModel load_quantization(models::Qwen2ForCausalLMImpl& model, const std::filesystem::path& dir);

}  // namespace qwenqat::qat
