// QatConfig: which layers of a Qwen2 model are fake-quantized and how —
// a default weight scheme, optional per-token dynamic activation bits
// ("8da4w" style), per-layer overrides by exact Hugging Face layer name or by
// regex, scale initialization and whether scales train. Named presets
// (w4g32, w4g128, w8c, w4g32a8, w4g32-mixed, ...) and a JSON form (the
// "config" object of quantization.json). Torch-free. Rules: docs/QAT.md.
#pragma once

#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::qat {

// How one layer is quantized. Layer names are the Hugging Face prefixes of the
// weights: "model.embed_tokens", "model.layers.3.mlp.down_proj", "lm_head".
struct LayerScheme {
  bool quantize = true;       // false: the layer stays in full precision
  quant::QuantSpec weight;    // meaningful when quantize
  int activation_bits = 0;    // 0: float inputs; 2..8: per-token dynamic fake quant
  // "none", "w4g32", "w4g32+a8".
  std::string name() const;
  bool operator==(const LayerScheme&) const = default;
};

// One override rule. Exactly one of `name` (exact layer name) or `regex`
// (ECMAScript, std::regex_search: matches anywhere in the name unless anchored).
struct LayerOverride {
  std::string name;
  std::string regex;
  LayerScheme scheme;
};

struct QatConfig {
  // Default scheme of the decoder layers' linear projections.
  quant::QuantSpec weight{4, 32, true};
  int activation_bits = 0;  // 0 or 2..8 (8 = "a8")
  // Whether the default scheme also covers model.embed_tokens / lm_head
  // (default no: like torchao's recipes the embeddings and the output layer
  // stay in full precision unless a preset or an override says otherwise).
  bool quantize_embed_tokens = false;
  bool quantize_lm_head = false;
  // Overrides, checked in order: the FIRST matching rule decides the layer's
  // scheme; layers no rule matches get the default.
  std::vector<LayerOverride> overrides;
  quant::ScaleInit scale_init = quant::ScaleInit::kMinMax;
  bool learnable_scales = true;  // false: scales frozen after initialization
  std::string preset;            // the preset it came from ("" if none); informational

  // The scheme of `layer` (a Hugging Face layer name). Embedding layers
  // ("model.embed_tokens") never get activation quantization (their input is
  // token ids).
  LayerScheme scheme_for(const std::string& layer) const;

  // Throws qwenqat::Error if bits are out of range, a group size is negative,
  // an override has neither or both of name/regex, or a regex does not compile.
  void validate() const;

  Json to_json() const;
  // Parses (and validates) the JSON form; `origin` names the file in errors.
  // Unknown keys are rejected (a misspelt key must not be ignored silently).
  static QatConfig from_json(const Json& j, const std::string& origin = "quantization config");

  // A named preset (see preset_names()); also accepts any canonical weight
  // spec such as "w5g64" or "w4g128a". Throws qwenqat::Error listing the
  // presets when `name` is unknown.
  static QatConfig from_preset(const std::string& name);
  static std::vector<std::string> preset_names();
};

// "minmax" | "mse" <-> ScaleInit; throws naming `what` on anything else.
quant::ScaleInit parse_scale_init(const std::string& s, const std::string& what = "scale_init");
std::string scale_init_name(quant::ScaleInit init);

}  // namespace qwenqat::qat
