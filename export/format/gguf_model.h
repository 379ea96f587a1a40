// Writing a whole Qwen2 model as a GGUF file llama.cpp and Ollama load:
// architecture "qwen2" with its hyperparameter keys, the tokenizer (model
// "gpt2", pre-tokenizer "qwen2" or "deepseek-r1-qwen", tokens, token types,
// merges, special ids), and the tensors under llama.cpp's names in llama.cpp's
// order with exact types: w8g32 -> Q8_0, w4g32 -> Q4_0, w4g32a -> Q4_1,
// float -> F32 / F16 (1-D tensors always F32). Torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/util/json_io.h"
#include "export/format/gguf_writer.h"
#include "models/checkpoint/qwen2_config.h"
#include "qat/quant/quant_math.h"

namespace qwenqat::format {

// One tensor to export under its Hugging Face name. Exactly one form is set:
//   values (float32, row-major `shape`), or
//   quantized (a 2-D [rows, cols] QuantizedMatrix; shape must be {rows, cols}), or
//   raw_type + raw (ggml bytes already in that type, e.g. from a requantizer).
struct GgufModelTensor {
  std::string name;            // e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // row-major, outermost first
  std::vector<float> values;
  std::optional<quant::QuantizedMatrix> quantized;
  std::optional<GgmlType> raw_type;
  std::vector<uint8_t> raw;
};

struct GgufModelOptions {
  std::string name = "qwen2";            // general.name
  GgmlType float_type = GgmlType::kF32;  // unquantized 2-D weights: F32 or F16
};

// llama.cpp's name of a Hugging Face Qwen2 tensor ("model.layers.3.mlp.up_proj.weight"
// -> "blk.3.ffn_up.weight"); throws naming the tensor when it has none.
std::string gguf_tensor_name(const std::string& hf_name);

// Adds the tokenizer.ggml.* keys from a Hugging Face tokenizer.json (parsed)
// and tokenizer_config.json (may be null): tokens from model.vocab and
// added_tokens by id, token types (1 normal, 3 control = special added token,
// 4 user-defined = other added token, 5 unused = "[PAD<id>]" filler), merges
// as "a b", bos/eos from config (else tokenizer_config), padding from
// tokenizer_config's pad_token, add_bos_token. The token list has exactly
// config.vocab_size entries: cut when the model has fewer embedding rows than
// the tokenizer has tokens, padded with "[PAD<id>]" when it has more.
void add_qwen2_tokenizer(GgufWriter& w, const Json& tokenizer, const Json& tokenizer_config,
                         const models::Qwen2Config& config);

// Writes `path` atomically (pass `tensors` with std::move to avoid a copy;
// each tensor's data is released once converted). Every tensor the config implies must be given
// exactly once with its Hugging Face shape (lm_head.weight may be absent when
// tie_word_embeddings); throws naming the tensor on a missing, unknown,
// misshapen or duplicate tensor or an unsupported quantization (the message
// lists the supported ones).
void write_qwen2_gguf(const std::filesystem::path& path, const models::Qwen2Config& config,
                      std::string_view tokenizer_json, const Json& tokenizer_config,
                      std::vector<GgufModelTensor> tensors, const GgufModelOptions& options = {});
// The same with tokenizer.json already parsed (parsing the real 7 MB file
// takes about a second).
void write_qwen2_gguf(const std::filesystem::path& path, const models::Qwen2Config& config,
                      const Json& tokenizer, const Json& tokenizer_config,
                      std::vector<GgufModelTensor> tensors, const GgufModelOptions& options = {});

}  // namespace qwenqat::format
