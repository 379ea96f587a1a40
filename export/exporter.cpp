// Implementation of exporter.h: checkpoint + quantization state -> tensors ->
// HDF5 / GGUF / safetensors.
#include "export/exporter.h"

#include <chrono>
#include <cmath>
#include <optional>

#include "data/prompts/templates.h"
#include "data/tokenizer/tokenizer.h"
#include "data/util/check.h"
#include "data/util/half.h"
#include "data/util/progress.h"
#include "export/format/gguf_blocks.h"
#include "export/format/gguf_model.h"
#include "export/format/h5_model_writer.h"
#include "export/format/packed_tensor.h"
#include "models/checkpoint/qwen2_config.h"
#include "models/checkpoint/safetensors.h"
#include "qat/qat_config.h"

namespace qwenqat::exporter {
namespace fs = std::filesystem;

std::vector<std::string> qwen2_tensor_names(int64_t layers, bool tied) {
  std::vector<std::string> n = {"model.embed_tokens.weight"};
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    for (const char* s :
         {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
          "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
          "self_attn.v_proj.bias", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
          "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"})
      n.push_back(p + s);
  }
  n.push_back("model.norm.weight");
  if (!tied) n.push_back("lm_head.weight");
  return n;
}

namespace {

// The fp16 bits a learned float32 scale / offset deploys with (mirrors
// qat::deployed_scale / deployed_offset: clamp, then round to fp16).
std::vector<uint16_t> deployed(const models::TensorView& t, bool is_scale) {
  std::vector<float> v = models::to_f32(t);
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    QWENQAT_CHECK(std::isfinite(v[i]), "tensor ", t.name, " holds a non-finite value at ", i);
    float c = is_scale ? std::min(std::max(v[i], quant::kMinScale), quant::kMaxHalf)
                       : std::min(std::max(v[i], -quant::kMaxHalf), quant::kMaxHalf);
    out[i] = f32_to_fp16(c);
  }
  return out;
}

std::string layer_of(const std::string& tensor) {
  const std::string suffix = ".weight";
  if (tensor.size() > suffix.size() && tensor.ends_with(suffix))
    return tensor.substr(0, tensor.size() - suffix.size());
  return "";
}

}  // namespace

std::vector<ExportTensor> load_export_tensors(const fs::path& model, Json* quantization_json) {
  const auto config = models::Qwen2Config::load(model);
  const fs::path qpath = model / "quantization.json";
  QWENQAT_CHECK(fs::exists(qpath), model.string(),
                ": checkpoint has no quantization state (quantization.json). Produce one with "
                "`qwenqat train --model ",
                model.string(), " --preset w4g32 --steps 0` (PTQ) or a QAT run.");
  const Json qj = read_json_file(qpath);
  QWENQAT_CHECK(qj.contains("config"), qpath.string(), ": missing the \"config\" object");
  const auto qconfig = qat::QatConfig::from_json(qj["config"], qpath.string() + " config");
  if (quantization_json) *quantization_json = qj;

  models::Checkpoint ck(model);
  // Quantizer state: quantizers.safetensors (what qwenqat train writes) or,
  // failing that, the model file itself.
  std::optional<models::Checkpoint> qfile;
  if (fs::exists(model / "quantizers.safetensors")) qfile.emplace(model / "quantizers.safetensors");
  const models::Checkpoint& qck = qfile ? *qfile : ck;
  std::vector<ExportTensor> out;
  for (const auto& name :
       qwen2_tensor_names(config.num_hidden_layers, config.tie_word_embeddings)) {
    const auto& t = ck.get(name);
    ExportTensor e;
    e.name = name;
    e.shape = t.shape;
    const std::string layer = layer_of(name);
    const auto scheme = layer.empty() || t.shape.size() != 2 ? qat::LayerScheme{false, {}, 0}
                                                             : qconfig.scheme_for(layer);
    e.activation_bits = scheme.activation_bits;
    const auto* scale = qck.find(layer + ".weight_fake_quant.scale");
    if (scheme.quantize) {
      QWENQAT_CHECK(scale != nullptr, model.string(), ": layer ", layer, " is quantized (",
                    scheme.name(), ") but tensor ", layer,
                    ".weight_fake_quant.scale is missing from the checkpoint");
      const int64_t rows = t.shape[0], cols = t.shape[1];
      scheme.weight.validate(cols, name);
      const int64_t groups = scheme.weight.groups_per_row(cols);
      QWENQAT_CHECK(scale->numel() == rows * groups, "tensor ", scale->name, " has ",
                    scale->numel(), " elements; ", scheme.weight.name(), " on [", rows, ", ", cols,
                    "] needs ", rows * groups);
      std::vector<uint16_t> offsets;
      if (!scheme.weight.symmetric) {
        const auto* off = qck.find(layer + ".weight_fake_quant.offset");
        QWENQAT_CHECK(off != nullptr && off->numel() == rows * groups, "tensor ", layer,
                      ".weight_fake_quant.offset is missing or misshapen (asymmetric ",
                      scheme.weight.name(), ")");
        offsets = deployed(*off, false);
      }
      const std::vector<float> w = models::to_f32(t);
      e.quantized = true;
      e.q = quant::quantize_matrix_with(w.data(), rows, cols, scheme.weight, deployed(*scale, true),
                                        std::move(offsets));
    } else {
      e.values = models::to_f32(t);
    }
    out.push_back(std::move(e));
  }
  return out;
}

namespace {

std::string read_optional(const fs::path& p) {
  return fs::exists(p) ? read_file(p) : std::string();
}

void write_h5(const ExportOptions& o, const std::vector<ExportTensor>& tensors, const Json& qj,
              const std::string& config_text, const std::string& tok, const std::string& tok_cfg,
              const std::string& template_name) {
  format::H5ModelWriter w(o.out_h5);
  w.set_config_json(config_text);
  if (!tok.empty()) w.set_tokenizer_json(tok);
  if (!tok_cfg.empty()) w.set_tokenizer_config_json(tok_cfg);
  w.set_quantization_config_json(qj.dump(2));
  if (!template_name.empty()) w.set_prompt_template(template_name);
  Progress bar("export h5", int64_t(tensors.size()), "tensor", o.progress);
  for (const auto& t : tensors) {
    if (t.quantized) {
      const auto packed = format::pack(t.q);
      w.add_packed_tensor(t.name, format::view_of(packed));
    } else {
      // Norms and biases stay f32 whatever float_dtype says (they are tiny).
      const auto dtype = t.shape.size() == 1 ? models::DType::kF32 : *o.float_dtype;
      w.add_float_tensor_f32(t.name, dtype, t.shape, t.values);
    }
    if (t.activation_bits > 0) w.set_activation_bits(t.name, t.activation_bits);
    bar.advance();
  }
  bar.finish();
  w.commit();
}

// GGUF: exact types where they exist; otherwise refuse or requantize.
Json write_gguf(const ExportOptions& o, const models::Qwen2Config& config,
                const std::vector<ExportTensor>& tensors, const std::string& tok,
                const std::string& tok_cfg) {
  QWENQAT_CHECK(!tok.empty(), o.model.string(),
                ": GGUF export needs tokenizer.json beside the checkpoint");
  Json requant = Json::array();
  std::vector<format::GgufModelTensor> g;
  for (const auto& t : tensors) {
    format::GgufModelTensor m;
    m.name = t.name;
    m.shape = t.shape;
    if (!t.quantized) {
      m.values = t.values;
    } else if (const auto s = t.q.spec; (s.bits == 8 && s.symmetric && s.group_size == 32) ||
                                        (s.bits == 4 && s.group_size == 32)) {
      m.quantized = t.q;
    } else {
      QWENQAT_CHECK(o.gguf_allow_requant, "tensor ", t.name, ": scheme ", s.name(),
                    " has no exact llama.cpp type. GGUF export works for w8g32 (Q8_0), "
                    "w4g32 (Q4_0) and w4g32a (Q4_1); pass --gguf-allow-requant to requantize "
                    "(the error is reported).");
      std::vector<float> w(size_t(t.q.rows * t.q.cols));
      quant::dequantize_matrix(t.q, w.data());
      const bool q8 = s.bits > 4;
      m.raw_type = q8 ? format::GgmlType::kQ8_0 : format::GgmlType::kQ4_0;
      std::vector<float> back(w.size());
      if (q8) {
        auto b = format::quantize_q8_0_ref(w.data(), int64_t(w.size()));
        m.raw.assign(reinterpret_cast<uint8_t*>(b.data()),
                     reinterpret_cast<uint8_t*>(b.data() + b.size()));
      } else {
        auto b = format::quantize_q4_0_ref(w.data(), int64_t(w.size()));
        m.raw.assign(reinterpret_cast<uint8_t*>(b.data()),
                     reinterpret_cast<uint8_t*>(b.data() + b.size()));
      }
      format::dequantize_blocks(*m.raw_type, m.raw.data(), int64_t(w.size()), back.data());
      double err = 0, ref = 0;
      for (size_t i = 0; i < w.size(); ++i) {
        err += double(back[i] - w[i]) * (back[i] - w[i]);
        ref += double(w[i]) * w[i];
      }
      requant.push_back({{"tensor", t.name},
                         {"from", s.name()},
                         {"to", q8 ? "Q8_0" : "Q4_0"},
                         {"relative_rms_error", ref > 0 ? std::sqrt(err / ref) : 0.0}});
    }
    g.push_back(std::move(m));
  }
  format::GgufModelOptions go;
  go.float_type = o.gguf_f16 ? format::GgmlType::kF16 : format::GgmlType::kF32;
  go.name = o.model.filename().string();
  const Json tc = tok_cfg.empty() ? Json() : parse_json(tok_cfg, "tokenizer_config.json");
  format::write_qwen2_gguf(o.out_gguf, config, std::string_view(tok), tc, std::move(g), go);
  return requant;
}

void write_fake_quant_safetensors(const ExportOptions& o, const std::vector<ExportTensor>& tensors,
                                  const std::string& config_text) {
  fs::create_directories(o.out_safetensors);
  std::vector<std::vector<float>> storage;
  storage.reserve(tensors.size());
  std::vector<models::TensorToWrite> list;
  for (const auto& t : tensors) {
    if (t.quantized) {
      storage.emplace_back(size_t(t.q.rows * t.q.cols));
      quant::dequantize_matrix(t.q, storage.back().data());
    } else {
      storage.push_back(t.values);
    }
    const auto& v = storage.back();
    list.push_back({t.name,
                    models::DType::kF32,
                    t.shape,
                    {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4}});
  }
  models::write_safetensors(o.out_safetensors / "model.safetensors", list);
  Json cfg = parse_json(config_text, "config.json");
  cfg["torch_dtype"] = "float32";
  write_json_file(o.out_safetensors / "config.json", cfg);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
    if (fs::exists(o.model / f)) write_file_atomic(o.out_safetensors / f, read_file(o.model / f));
}

// The storage dtype of the checkpoint's embedding (its float tensors):
// f16/bf16 as stored, anything else f32.
models::DType checkpoint_float_dtype(const fs::path& dir) {
  const models::Checkpoint ck(dir);
  const auto* t = ck.find("model.embed_tokens.weight");
  if (t && (t->dtype == models::DType::kBF16 || t->dtype == models::DType::kF16)) return t->dtype;
  return models::DType::kF32;
}

}  // namespace

Json run_export(const ExportOptions& o) {
  QWENQAT_CHECK(
      !o.out_h5.empty() || !o.out_gguf.empty() || !o.out_safetensors.empty(),
      "export: nothing to do; give --out MODEL.h5, --gguf MODEL.gguf or --safetensors DIR");
  const auto t0 = std::chrono::steady_clock::now();
  Json qj;
  const auto tensors = load_export_tensors(o.model, &qj);
  const auto config = models::Qwen2Config::load(o.model);
  const std::string config_text = read_file(o.model / "config.json");
  const std::string tok = read_optional(o.model / "tokenizer.json");
  const std::string tok_cfg = read_optional(o.model / "tokenizer_config.json");
  std::string template_name = o.prompt_template;
  if (template_name.empty() && !tok.empty())
    template_name = data::default_template_name(data::Tokenizer::load(o.model / "tokenizer.json"));
  if (!template_name.empty()) data::get_template(template_name);  // validates the name

  Json summary = {{"model", o.model.string()}};
  if (!o.out_h5.empty()) {
    ExportOptions h5o = o;
    if (!h5o.float_dtype) h5o.float_dtype = checkpoint_float_dtype(o.model);
    write_h5(h5o, tensors, qj, config_text, tok, tok_cfg, template_name);
    summary["float_dtype"] = models::dtype_name(*h5o.float_dtype);
    summary["h5"] = {{"path", o.out_h5.string()}, {"bytes", fs::file_size(o.out_h5)}};
  }
  if (!o.out_gguf.empty()) {
    Json requant = write_gguf(o, config, tensors, tok, tok_cfg);
    summary["gguf"] = {{"path", o.out_gguf.string()},
                       {"bytes", fs::file_size(o.out_gguf)},
                       {"requantized", requant}};
    // GGUF has no per-token activation quantization; llama.cpp quantizes the
    // inputs of Q4_0/Q8_0 matmuls to Q8 blocks of 32 on its own.
    int64_t act_layers = 0;
    for (const auto& t : tensors) act_layers += t.activation_bits > 0 ? 1 : 0;
    if (act_layers > 0)
      summary["gguf"]["note"] = std::to_string(act_layers) +
                                " layers were trained with per-token activation quantization, "
                                "which GGUF cannot record; llama.cpp runs them with its own Q8 "
                                "block activations";
  }
  if (!o.out_safetensors.empty()) {
    write_fake_quant_safetensors(o, tensors, config_text);
    summary["safetensors"] = {{"path", o.out_safetensors.string()}};
  }
  summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return summary;
}

}  // namespace qwenqat::exporter
