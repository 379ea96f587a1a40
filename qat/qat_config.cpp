// QatConfig: presets, override resolution, validation and the JSON form.
#include "qat/qat_config.h"

#include <regex>
#include <sstream>

#include "data/util/check.h"

namespace qwenqat::qat {
namespace {

constexpr const char* kEmbedTokens = "model.embed_tokens";
constexpr const char* kLmHead = "lm_head";

struct Preset {
  const char* name;
  const char* help;
};

// Every named preset; built by from_preset().
const Preset kPresets[] = {
    {"w4g32", "int4 symmetric, groups of 32 (llama.cpp Q4_0)"},
    {"w4g64", "int4 symmetric, groups of 64"},
    {"w4g128", "int4 symmetric, groups of 128"},
    {"w4g32a", "int4 asymmetric, groups of 32 (llama.cpp Q4_1)"},
    {"w8g32", "int8 symmetric, groups of 32 (llama.cpp Q8_0)"},
    {"w8c", "int8 symmetric, per output channel"},
    {"w4g32a8", "int4 g32 weights + 8-bit per-token dynamic activations (8da4w)"},
    {"w4g128a8", "int4 g128 weights + 8-bit per-token dynamic activations"},
    {"w3g32", "int3 symmetric, groups of 32"},
    {"w2g32", "int2 symmetric, groups of 32"},
    {"none", "no quantization: plain full-precision fine-tuning (e.g. training a base model)"},
    {"w4g32-mixed",
     "int4 g32, with model.embed_tokens and lm_head at int8 per channel and mlp.down_proj at "
     "int8 g32"},
};

void check_bits(int bits, const std::string& what) {
  QWENQAT_CHECK(bits >= 2 && bits <= 8, what, ": quantization bits must be 2..8, got ", bits);
}

void check_spec(const quant::QuantSpec& s, const std::string& what) {
  check_bits(s.bits, what);
  QWENQAT_CHECK(s.group_size >= 0, what, ": group size must be > 0 (or 0 = per channel), got ",
                s.group_size);
}

void check_act_bits(int bits, const std::string& what) {
  QWENQAT_CHECK(bits == 0 || (bits >= 2 && bits <= 8), what,
                ": activation bits must be 0 (off) or 2..8, got ", bits);
}

Json scheme_to_json(const LayerScheme& s) {
  Json j;
  j["weight"] = s.quantize ? Json(s.weight.name()) : Json("none");
  j["activation_bits"] = s.activation_bits;
  return j;
}

// Reads a weight field: a spec name or "none" (layer not quantized).
void read_weight(const Json& v, LayerScheme* s, const std::string& where) {
  QWENQAT_CHECK(v.is_string(), where, ": \"weight\" must be a string such as \"w4g32\" or "
                "\"none\"");
  const auto name = v.get<std::string>();
  if (name == "none") {
    s->quantize = false;
    return;
  }
  try {
    s->weight = quant::parse_spec(name);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  s->quantize = true;
}

int read_int(const Json& v, const std::string& where) {
  QWENQAT_CHECK(v.is_number_integer(), where, " must be an integer");
  return v.get<int>();
}

bool read_bool(const Json& v, const std::string& where) {
  QWENQAT_CHECK(v.is_boolean(), where, " must be true or false");
  return v.get<bool>();
}

}  // namespace

std::string LayerScheme::name() const {
  std::ostringstream os;
  if (quantize) {
    os << weight.name();
    if (activation_bits) os << "+a" << activation_bits;
  } else {
    os << (activation_bits ? "a" : "none");
    if (activation_bits) os << activation_bits;
  }
  return os.str();
}

LayerScheme QatConfig::scheme_for(const std::string& layer) const {
  const bool is_embed = layer == kEmbedTokens;
  LayerScheme s;
  bool matched = false;
  for (const auto& o : overrides) {
    const bool hit = o.regex.empty() ? o.name == layer : std::regex_search(layer, std::regex(o.regex));
    if (hit) {
      s = o.scheme;
      matched = true;
      break;
    }
  }
  if (!matched) {
    s.weight = weight;
    s.activation_bits = activation_bits;
    s.quantize = !((is_embed && !quantize_embed_tokens) || (layer == kLmHead && !quantize_lm_head));
    if (!s.quantize) s.activation_bits = 0;
  }
  if (is_embed) s.activation_bits = 0;
  return s;
}

void QatConfig::validate() const {
  check_spec(weight, "quantization config \"weight\"");
  check_act_bits(activation_bits, "quantization config \"activation_bits\"");
  for (size_t i = 0; i < overrides.size(); ++i) {
    const auto& o = overrides[i];
    const std::string where = "quantization override " + std::to_string(i) + " (" +
                              (o.regex.empty() ? "name \"" + o.name : "regex \"" + o.regex) + "\")";
    QWENQAT_CHECK(o.name.empty() != o.regex.empty(), where,
                  ": give exactly one of \"name\" (exact layer name) or \"regex\"");
    if (!o.regex.empty()) {
      try {
        std::regex re(o.regex);
      } catch (const std::regex_error& e) {
        fail(where, ": the regex does not compile (", e.what(), ")");
      }
    }
    if (o.scheme.quantize) check_spec(o.scheme.weight, where);
    check_act_bits(o.scheme.activation_bits, where);
  }
}

Json QatConfig::to_json() const {
  Json j;
  j["weight"] = weight.name();
  j["activation_bits"] = activation_bits;
  j["quantize_embed_tokens"] = quantize_embed_tokens;
  j["quantize_lm_head"] = quantize_lm_head;
  j["scale_init"] = scale_init_name(scale_init);
  j["learnable_scales"] = learnable_scales;
  j["preset"] = preset;
  Json ov = Json::array();
  for (const auto& o : overrides) {
    Json r = scheme_to_json(o.scheme);
    if (o.regex.empty()) {
      r["name"] = o.name;
    } else {
      r["regex"] = o.regex;
    }
    ov.push_back(r);
  }
  j["overrides"] = ov;
  return j;
}

QatConfig QatConfig::from_json(const Json& j, const std::string& origin) {
  QWENQAT_CHECK(j.is_object(), origin, ": the quantization config must be a JSON object");
  QatConfig c;
  for (const auto& [key, v] : j.items()) {
    const std::string where = origin + ": \"" + key + "\"";
    if (key == "weight") {
      LayerScheme s;
      read_weight(v, &s, origin);
      QWENQAT_CHECK(s.quantize, where, ": the default weight scheme cannot be \"none\"");
      c.weight = s.weight;
    } else if (key == "activation_bits") {
      c.activation_bits = read_int(v, where);
    } else if (key == "quantize_embed_tokens") {
      c.quantize_embed_tokens = read_bool(v, where);
    } else if (key == "quantize_lm_head") {
      c.quantize_lm_head = read_bool(v, where);
    } else if (key == "scale_init") {
      QWENQAT_CHECK(v.is_string(), where, " must be \"minmax\" or \"mse\"");
      c.scale_init = parse_scale_init(v.get<std::string>(), where);
    } else if (key == "learnable_scales") {
      c.learnable_scales = read_bool(v, where);
    } else if (key == "preset") {
      QWENQAT_CHECK(v.is_string(), where, " must be a string");
      c.preset = v.get<std::string>();
    } else if (key == "overrides") {
      QWENQAT_CHECK(v.is_array(), where, " must be an array of {\"name\"|\"regex\", \"weight\", "
                    "\"activation_bits\"} objects");
      for (size_t i = 0; i < v.size(); ++i) {
        const auto& r = v[i];
        const std::string w = origin + ": overrides[" + std::to_string(i) + "]";
        QWENQAT_CHECK(r.is_object(), w, " must be an object");
        LayerOverride o;
        for (const auto& [k, x] : r.items()) {
          if (k == "name" || k == "regex") {
            QWENQAT_CHECK(x.is_string(), w, ".", k, " must be a string");
            (k == "name" ? o.name : o.regex) = x.get<std::string>();
          } else if (k == "weight") {
            read_weight(x, &o.scheme, w);
          } else if (k == "activation_bits") {
            o.scheme.activation_bits = read_int(x, w + ".activation_bits");
          } else {
            fail(w, ": unknown key \"", k, "\" (expected name, regex, weight, activation_bits)");
          }
        }
        QWENQAT_CHECK(r.contains("weight"), w, ": missing \"weight\" (a scheme or \"none\")");
        c.overrides.push_back(o);
      }
    } else {
      fail(origin, ": unknown key \"", key,
           "\" (expected weight, activation_bits, quantize_embed_tokens, quantize_lm_head, "
           "scale_init, learnable_scales, preset, overrides)");
    }
  }
  c.validate();
  return c;
}

QatConfig QatConfig::from_preset(const std::string& name) {
  QatConfig c;
  c.preset = name;
  if (name == "none") {  // every layer matches the rule and stays in float
    c.overrides.push_back({"", ".*", LayerScheme{false, {4, 32, true}, 0}});
    return c;
  }
  if (name == "w4g32-mixed") {
    c.weight = {4, 32, true};
    LayerScheme w8c{true, {8, 0, true}, 0};
    c.overrides.push_back({kEmbedTokens, "", w8c});
    c.overrides.push_back({kLmHead, "", w8c});
    c.overrides.push_back({"", "\\.mlp\\.down_proj$", LayerScheme{true, {8, 32, true}, 0}});
    return c;
  }
  std::string spec = name;
  const auto a8 = name.size() > 2 ? name.substr(name.size() - 2) : "";
  if (a8 == "a8" && name.size() > 3 && name[name.size() - 3] != 'a') {
    c.activation_bits = 8;
    spec = name.substr(0, name.size() - 2);
  }
  try {
    c.weight = quant::parse_spec(spec);
  } catch (const Error&) {
    std::ostringstream os;
    for (const auto& p : kPresets) os << "\n  " << p.name << ": " << p.help;
    fail("unknown quantization preset '", name, "'. Presets:", os.str(),
         "\nor any scheme w<bits>g<group>[a] / w<bits>c[a] (bits 2..8), optionally followed by "
         "a8 for 8-bit activations");
  }
  c.validate();
  return c;
}

std::vector<std::string> QatConfig::preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.push_back(p.name);
  return names;
}

quant::ScaleInit parse_scale_init(const std::string& s, const std::string& what) {
  if (s == "minmax") return quant::ScaleInit::kMinMax;
  if (s == "mse") return quant::ScaleInit::kMseClip;
  fail(what, ": unknown scale initialization '", s, "' (use \"minmax\" or \"mse\")");
}

std::string scale_init_name(quant::ScaleInit init) {
  return init == quant::ScaleInit::kMseClip ? "mse" : "minmax";
}

}  // namespace qwenqat::qat
