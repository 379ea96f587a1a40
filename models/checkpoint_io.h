// Loading and saving the LibTorch Qwen2 model as a Hugging Face checkpoint
// directory (config.json + model.safetensors [+ tokenizer files]), random
// initialization, and random-weight checkpoints written tensor by tensor.
//
// Loading is a name-by-name copy from the memory-mapped safetensors into
// named_parameters(): every mismatch (missing tensors, unexpected tensors,
// shape mismatches against the config) is reported by name in one
// qwenqat::Error; file dtypes BF16/F16/F32/F64 are converted to the compute
// dtype; each tensor's file pages are released after its copy so peak RSS
// stays near the model's own size. Tied embeddings work both ways: a tied
// model needs no lm_head.weight (one in the file is ignored, as in HF) and
// saving a tied model writes none.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "models/checkpoint/safetensors.h"
#include "models/qwen2_model.h"

namespace qwenqat::models {

// Weights of random initialization: normal(0, kInitializerRange) for linear
// and embedding weights, zeros for biases, ones for norms (HF's _init_weights
// with initializer_range = 0.02).
inline constexpr double kInitializerRange = 0.02;

// "f32" | "bf16" | "f16" (also "float32", "bfloat16", "float16") -> dtype;
// throws qwenqat::Error naming `flag` otherwise.
torch::Dtype parse_torch_dtype(const std::string& s, const std::string& flag = "--dtype");
DType parse_file_dtype(const std::string& s, const std::string& flag = "--dtype");
torch::Dtype to_torch_dtype(DType d);  // F32/F16/BF16/F64 only
// HF config spelling: "float32", "bfloat16", "float16".
std::string hf_dtype_name(DType d);

// "cpu" | "cuda" | "cuda:N"; throws naming `flag` if unknown or if CUDA is
// requested but unavailable.
torch::Device parse_device(const std::string& s, const std::string& flag = "--device");

// The checkpoint's tensors for `config`, in model order, with their shapes.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(
    const Qwen2Config& config);

// Copies every checkpoint tensor into `model`'s parameters (see top).
// release_pages: drop each tensor's file pages after copying it.
void load_weights(Qwen2ForCausalLMImpl& model, const Checkpoint& checkpoint,
                  bool release_pages = true);

// Reads PATH/config.json (PATH: a model directory, or a .safetensors file with
// config.json beside it), builds the model with `options` and loads it.
Qwen2ForCausalLM load_model(const std::filesystem::path& path, const ModuleOptions& options = {});

// Fills the parameters with the random initialization (see kInitializerRange),
// deterministic for a seed; the same values init_checkpoint writes.
void init_weights(Qwen2ForCausalLMImpl& model, uint64_t seed);

// Saves a Hugging Face directory: out_dir/model.safetensors (checkpoint
// parameters converted to `dtype`, metadata {"format": "pt"}), config.json
// (torch_dtype set accordingly) and the tokenizer files found in
// tokenizer_src (if not empty). Files are written atomically.
void save_model(Qwen2ForCausalLMImpl& model, const std::filesystem::path& out_dir, DType dtype,
                const std::filesystem::path& tokenizer_src = {});

// Writes a random-weight checkpoint for `config` without building the model:
// tensors are generated one at a time in float32 and kept only in `dtype`
// (memory ~ the file size). Progress on stderr if `progress`.
void init_checkpoint(const Qwen2Config& config, const std::filesystem::path& out_dir, DType dtype,
                     uint64_t seed, const std::filesystem::path& tokenizer_src = {},
                     bool progress = false);

// Copies tokenizer.json, tokenizer_config.json, generation_config.json,
// special_tokens_map.json, vocab.json, merges.txt and added_tokens.json from
// src_dir to out_dir when present; returns the names copied.
std::vector<std::string> copy_tokenizer_files(const std::filesystem::path& src_dir,
                                              const std::filesystem::path& out_dir);

}  // namespace qwenqat::models
