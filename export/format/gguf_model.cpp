// Implementation of gguf_model.h: Hugging Face -> llama.cpp tensor names and
// order, the qwen2 hyperparameter keys and the gpt2-style tokenizer metadata.
#include "export/format/gguf_model.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <regex>

#include "data/util/check.h"
#include "data/util/half.h"

namespace qwenqat::format {
namespace {

constexpr int32_t kTokenNormal = 1, kTokenControl = 3, kTokenUserDefined = 4, kTokenUnused = 5;

// llama_ftype values for general.file_type.
uint32_t file_type_of(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
      return 0;
    case GgmlType::kF16:
      return 1;
    case GgmlType::kQ4_0:
      return 2;
    case GgmlType::kQ4_1:
      return 3;
    case GgmlType::kQ8_0:
      return 7;
    case GgmlType::kBF16:
      return 32;
    default:
      fail("GGUF export: no llama.cpp file type for ", ggml_type_name(uint32_t(t)));
  }
}

// Position of a llama.cpp tensor in llama.cpp's file order.
int64_t order_key(const std::string& gguf_name, int64_t n_layers) {
  static const char* kLayerOrder[] = {"attn_norm.weight", "ffn_norm.weight", "attn_q.weight",
                                      "attn_q.bias",      "attn_k.weight",   "attn_k.bias",
                                      "attn_v.weight",    "attn_v.bias",     "attn_output.weight",
                                      "ffn_gate.weight",  "ffn_up.weight",   "ffn_down.weight"};
  if (gguf_name == "token_embd.weight") return 0;
  if (gguf_name == "output_norm.weight") return (n_layers + 1) * 100;
  if (gguf_name == "output.weight") return (n_layers + 1) * 100 + 1;
  const size_t dot = gguf_name.find('.', 4);
  const int64_t layer = std::stoll(gguf_name.substr(4, dot - 4));
  const std::string rest = gguf_name.substr(dot + 1);
  for (int64_t i = 0; i < 12; ++i) {
    if (rest == kLayerOrder[i]) return (layer + 1) * 100 + i;
  }
  fail("GGUF export: no order for tensor ", gguf_name);
}

std::map<std::string, std::vector<int64_t>> expected_shapes(const models::Qwen2Config& c) {
  std::map<std::string, std::vector<int64_t>> m;
  const int64_t h = c.hidden_size;
  m["model.embed_tokens.weight"] = {c.vocab_size, h};
  m["model.norm.weight"] = {h};
  m["lm_head.weight"] = {c.vocab_size, h};
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    m[p + "input_layernorm.weight"] = {h};
    m[p + "post_attention_layernorm.weight"] = {h};
    m[p + "self_attn.q_proj.weight"] = {c.q_dim(), h};
    m[p + "self_attn.q_proj.bias"] = {c.q_dim()};
    m[p + "self_attn.k_proj.weight"] = {c.kv_dim(), h};
    m[p + "self_attn.k_proj.bias"] = {c.kv_dim()};
    m[p + "self_attn.v_proj.weight"] = {c.kv_dim(), h};
    m[p + "self_attn.v_proj.bias"] = {c.kv_dim()};
    m[p + "self_attn.o_proj.weight"] = {h, c.q_dim()};
    m[p + "mlp.gate_proj.weight"] = {c.intermediate_size, h};
    m[p + "mlp.up_proj.weight"] = {c.intermediate_size, h};
    m[p + "mlp.down_proj.weight"] = {h, c.intermediate_size};
  }
  return m;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Content of a special-token entry of tokenizer_config.json ("x" or {"content": "x"}).
std::string token_content(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"];
  return {};
}

// Converts one tensor to ggml bytes; returns the type.
GgmlType convert(GgufModelTensor& t, const GgufModelOptions& options, std::vector<uint8_t>& out) {
  const int forms =
      int(!t.values.empty()) + int(t.quantized.has_value()) + int(t.raw_type.has_value());
  QWENQAT_CHECK(forms == 1, "GGUF export: tensor ", t.name,
                " must have exactly one of float values, a quantized matrix or raw ggml data");
  if (t.raw_type) {
    out = std::move(t.raw);
    return *t.raw_type;
  }
  if (t.quantized) {
    const quant::QuantizedMatrix& q = *t.quantized;
    const std::vector<int64_t> qshape = {q.rows, q.cols};
    QWENQAT_CHECK(t.shape == qshape, "GGUF export: tensor ", t.name, " has shape ",
                  shape_str(t.shape), " but its quantized matrix is [", q.rows, ", ", q.cols, "]");
    const GgmlType type = ggml_type_for(q.spec, t.name);
    auto copy = [&](const auto& blocks) {
      out.resize(blocks.size() * sizeof(blocks[0]));
      std::memcpy(out.data(), blocks.data(), out.size());
    };
    if (type == GgmlType::kQ8_0) copy(to_q8_0(q, t.name));
    if (type == GgmlType::kQ4_0) copy(to_q4_0(q, t.name));
    if (type == GgmlType::kQ4_1) copy(to_q4_1(q, t.name));
    return type;
  }
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  QWENQAT_CHECK(int64_t(t.values.size()) == n, "GGUF export: tensor ", t.name, " has ",
                t.values.size(), " values for shape ", shape_str(t.shape));
  const GgmlType type = t.shape.size() == 1 ? GgmlType::kF32 : options.float_type;
  QWENQAT_CHECK(type == GgmlType::kF32 || type == GgmlType::kF16,
                "GGUF export: unquantized tensors are written as F32 or F16, not ",
                ggml_type_name(uint32_t(type)));
  out.clear();
  if (type == GgmlType::kF32) {
    out.resize(size_t(n) * 4);
    std::memcpy(out.data(), t.values.data(), out.size());
  } else {
    out.resize(size_t(n) * 2);
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = f32_to_fp16(t.values[size_t(i)]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return type;
}

}  // namespace

std::string gguf_tensor_name(const std::string& hf) {
  static const std::map<std::string, std::string> kTop = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> kLayer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  if (auto it = kTop.find(hf); it != kTop.end()) return it->second;
  static const std::regex kRe(R"(model\.layers\.(0|[1-9][0-9]{0,5})\.(.+))");
  std::smatch m;
  if (std::regex_match(hf, m, kRe)) {
    if (auto it = kLayer.find(m[2].str()); it != kLayer.end()) {
      return "blk." + m[1].str() + "." + it->second;
    }
  }
  fail("tensor ", hf, " has no llama.cpp (GGUF) name; a Qwen2 GGUF holds only the embeddings, ",
       "norms, attention and MLP projections and lm_head");
}

namespace {

// An added token that is not marked special but is spelled like a control
// token, as llama.cpp's convert_hf_to_gguf.py (does_token_look_special) takes
// it: <|...|>, <｜...｜> (DeepSeek), <unused...>, <pad>, <mask>, <2mass>, [@BOS@].
bool looks_special(const std::string& t) {
  const auto wrapped = [&t](const std::string& open, const std::string& close) {
    return t.size() >= open.size() + close.size() && t.starts_with(open) && t.ends_with(close);
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" || wrapped("<|", "|>") ||
         wrapped("<\xEF\xBD\x9C", "\xEF\xBD\x9C>") || wrapped("<unused", ">");
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

}  // namespace

void add_qwen2_tokenizer(GgufWriter& w, const Json& tok, const Json& tok_config,
                         const models::Qwen2Config& config) {
  QWENQAT_CHECK(tok.contains("model") && tok["model"].value("type", "") == "BPE" &&
                    tok["model"].contains("vocab") && tok["model"]["vocab"].is_object(),
                "tokenizer.json: model.type must be \"BPE\" with a model.vocab object for GGUF "
                "export (a byte-level BPE tokenizer like Qwen2's)");
  // Ids are bounded so a corrupt file cannot make us allocate without limit.
  constexpr int64_t kMaxId = int64_t(1) << 24;
  const Json& vocab = tok["model"]["vocab"];
  const int64_t n = config.vocab_size;
  QWENQAT_CHECK(n > 0 && n <= kMaxId, "GGUF export: vocab_size ", n, " is out of range");
  std::vector<std::string> tokens(static_cast<size_t>(n));
  std::vector<int32_t> types(static_cast<size_t>(n), kTokenUnused);
  std::vector<uint8_t> present(static_cast<size_t>(n), 0);
  auto put = [&](int64_t id, const std::string& text, int32_t type) {
    // Ids >= vocab_size are dropped: the list is cut to the model's
    // embedding rows (as in the shared reference files).
    if (id >= n) return;
    tokens[size_t(id)] = text;
    types[size_t(id)] = type;
    present[size_t(id)] = 1;
  };
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    QWENQAT_CHECK(it->is_number_integer() && it->get<int64_t>() >= 0 && it->get<int64_t>() < kMaxId,
                  "tokenizer.json: model.vocab[", it.key(), "] is not a valid token id");
    put(it->get<int64_t>(), it.key(), kTokenNormal);
  }
  const Json empty = Json::array();
  const Json& added = tok.contains("added_tokens") ? tok["added_tokens"] : empty;
  for (const auto& a : added) {
    QWENQAT_CHECK(a.contains("id") && a["id"].is_number_integer() && a["id"].get<int64_t>() >= 0 &&
                      a.contains("content") && a["content"].is_string(),
                  "tokenizer.json: an added_tokens entry lacks a valid id or string content");
    const std::string text = a["content"].get<std::string>();
    if (a.value("special", false) || looks_special(text)) {
      put(a["id"].get<int64_t>(), text, kTokenControl);
    } else {  // llama.cpp takes user-defined tokens as pre-normalized: U+2581 -> ' '
      put(a["id"].get<int64_t>(), replace_all(text, "\xE2\x96\x81", " "), kTokenUserDefined);
    }
  }
  // The token list has exactly vocab_size entries (the embedding rows):
  // tokens past it are cut, missing ids are filled with unused "[PAD<id>]".
  for (int64_t i = 0; i < n; ++i) {
    if (!present[size_t(i)]) tokens[size_t(i)] = "[PAD" + std::to_string(i) + "]";
  }
  // Id of a token text in the whole tokenizer (not only the kept rows); -1 if absent.
  auto id_of = [&](const std::string& text) -> int64_t {
    for (const auto& a : added) {
      if (a["content"] == text) return a["id"].get<int64_t>();
    }
    auto it = vocab.find(text);
    return it == vocab.end() ? -1 : it->get<int64_t>();
  };
  std::vector<std::string> merges;
  if (tok["model"].contains("merges")) {
    for (const auto& m : tok["model"]["merges"]) {
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
      } else {
        QWENQAT_CHECK(m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string(),
                      "tokenizer.json: model.merges entries must be \"a b\" or [\"a\", \"b\"]");
        merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      }
    }
  }
  const bool deepseek = id_of(
                            "<\xEF\xBD\x9C"
                            "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>") >= 0;
  w.set("tokenizer.ggml.model", GgufValue::string("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::string(deepseek ? "deepseek-r1-qwen" : "qwen2"));
  w.set("tokenizer.ggml.tokens", GgufValue::strings(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::int32s(types));
  w.set("tokenizer.ggml.merges", GgufValue::strings(merges));
  auto special_id = [&](int64_t from_config, const char* field) -> int64_t {
    if (from_config >= 0) return from_config;
    if (!tok_config.is_object() || !tok_config.contains(field)) return -1;
    const std::string text = token_content(tok_config[field]);
    return text.empty() ? -1 : id_of(text);
  };
  const int64_t bos = special_id(config.bos_token_id, "bos_token");
  const int64_t eos = special_id(config.eos_token_id, "eos_token");
  const int64_t pad = special_id(-1, "pad_token");
  if (bos >= 0) w.set("tokenizer.ggml.bos_token_id", GgufValue::uint32(uint32_t(bos)));
  if (eos >= 0) w.set("tokenizer.ggml.eos_token_id", GgufValue::uint32(uint32_t(eos)));
  if (pad >= 0) w.set("tokenizer.ggml.padding_token_id", GgufValue::uint32(uint32_t(pad)));
  const bool add_bos = tok_config.is_object() && tok_config.value("add_bos_token", false);
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(add_bos));
}

void write_qwen2_gguf(const std::filesystem::path& path, const models::Qwen2Config& config,
                      std::string_view tokenizer_json, const Json& tokenizer_config,
                      std::vector<GgufModelTensor> tensors, const GgufModelOptions& options) {
  write_qwen2_gguf(path, config, parse_json(tokenizer_json, "tokenizer.json"), tokenizer_config,
                   std::move(tensors), options);
}

void write_qwen2_gguf(const std::filesystem::path& path, const models::Qwen2Config& config,
                      const Json& tokenizer, const Json& tokenizer_config,
                      std::vector<GgufModelTensor> tensors, const GgufModelOptions& options) {
  const auto expected = expected_shapes(config);
  std::map<std::string, size_t> given;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string& name = tensors[i].name;
    auto it = expected.find(name);
    QWENQAT_CHECK(it != expected.end(), "GGUF export: unexpected tensor ", name,
                  " for a Qwen2 model with ", config.num_hidden_layers, " layers");
    QWENQAT_CHECK(tensors[i].shape == it->second, "GGUF export: tensor ", name, " has shape ",
                  shape_str(tensors[i].shape), ", the config implies ", shape_str(it->second));
    QWENQAT_CHECK(given.emplace(name, i).second, "GGUF export: tensor ", name, " given twice");
  }
  for (const auto& [name, shape] : expected) {
    if (name == "lm_head.weight" && config.tie_word_embeddings) continue;
    QWENQAT_CHECK(given.count(name), "GGUF export: tensor ", name, " is missing",
                  name == "lm_head.weight" ? " (the config does not tie word embeddings)" : "");
  }
  std::vector<std::pair<int64_t, size_t>> order;
  for (const auto& [name, i] : given) {
    order.emplace_back(order_key(gguf_tensor_name(name), config.num_hidden_layers), i);
  }
  std::sort(order.begin(), order.end());

  GgufWriter w;
  std::map<GgmlType, int> layer_types;
  for (const auto& [key, i] : order) {
    GgufModelTensor& t = tensors[i];
    std::vector<uint8_t> bytes;
    const GgmlType type = convert(t, options, bytes);
    if (t.shape.size() == 2 && t.name.rfind("model.layers.", 0) == 0) ++layer_types[type];
    const std::string gguf_name = gguf_tensor_name(t.name);
    w.add_tensor(gguf_name, t.shape, type, std::move(bytes));
    t = GgufModelTensor{};  // release the source data
  }
  GgmlType main_type = GgmlType::kF32;
  int best = -1;
  for (const auto& [type, count] : layer_types) {
    if (count > best) best = count, main_type = type;
  }
  QWENQAT_CHECK(
      config.head_dim == 0 || config.head_dim * config.num_attention_heads == config.hidden_size,
      "GGUF export: head_dim ", config.head_dim, " != hidden_size / num_attention_heads ",
      "is not supported by llama.cpp's qwen2 architecture");
  w.set("general.architecture", GgufValue::string("qwen2"));
  w.set("general.name", GgufValue::string(options.name));
  w.set("qwen2.block_count", GgufValue::uint32(uint32_t(config.num_hidden_layers)));
  w.set("qwen2.context_length", GgufValue::uint32(uint32_t(config.max_position_embeddings)));
  w.set("qwen2.embedding_length", GgufValue::uint32(uint32_t(config.hidden_size)));
  w.set("qwen2.feed_forward_length", GgufValue::uint32(uint32_t(config.intermediate_size)));
  w.set("qwen2.attention.head_count", GgufValue::uint32(uint32_t(config.num_attention_heads)));
  w.set("qwen2.attention.head_count_kv", GgufValue::uint32(uint32_t(config.num_key_value_heads)));
  w.set("qwen2.rope.freq_base", GgufValue::float32(float(config.rope_theta)));
  w.set("qwen2.attention.layer_norm_rms_epsilon", GgufValue::float32(float(config.rms_norm_eps)));
  w.set("general.file_type", GgufValue::uint32(file_type_of(main_type)));
  add_qwen2_tokenizer(w, tokenizer, tokenizer_config, config);
  w.write(path);
}

}  // namespace qwenqat::format
