// Implementation of models/checkpoint_io.h: name-by-name loading with
// mismatch reports, saving as a Hugging Face directory, random init and
// random-weight checkpoints written tensor by tensor.
#include "models/checkpoint_io.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cstring>
#include <map>
#include <sstream>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "data/util/json_io.h"
#include "data/util/progress.h"

namespace qwenqat::models {
namespace fs = std::filesystem;

namespace {

std::string shape_str(c10::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

bool is_norm(const std::string& name) {
  return name.ends_with("layernorm.weight") || name == "model.norm.weight";
}

// One tensor of the random initialization, float32 on CPU.
torch::Tensor random_tensor(const std::string& name, const std::vector<int64_t>& shape,
                            at::Generator& gen) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  if (is_norm(name)) return torch::ones(shape, f32);
  if (name.ends_with(".bias")) return torch::zeros(shape, f32);
  return at::normal(0.0, kInitializerRange, shape, gen, f32);
}

fs::path model_dir_of(const fs::path& path) {
  return fs::is_directory(path) ? path : path.parent_path();
}

}  // namespace

torch::Dtype parse_torch_dtype(const std::string& s, const std::string& flag) {
  if (s == "f32" || s == "float32") return torch::kFloat32;
  if (s == "bf16" || s == "bfloat16") return torch::kBFloat16;
  if (s == "f16" || s == "float16") return torch::kFloat16;
  fail(flag, ": unknown dtype \"", s, "\" (use f32, bf16 or f16)");
}

DType parse_file_dtype(const std::string& s, const std::string& flag) {
  const auto t = parse_torch_dtype(s, flag);
  return t == torch::kFloat32 ? DType::kF32 : t == torch::kBFloat16 ? DType::kBF16 : DType::kF16;
}

torch::Dtype to_torch_dtype(DType d) {
  switch (d) {
    case DType::kF64: return torch::kFloat64;
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    default: fail("tensor dtype ", dtype_name(d), " is not a floating-point weight dtype");
  }
}

std::string hf_dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    case DType::kBF16: return "bfloat16";
    default: fail("dtype ", dtype_name(d), " cannot be a checkpoint's torch_dtype");
  }
}

torch::Device parse_device(const std::string& s, const std::string& flag) {
  if (s == "cpu") return torch::kCPU;
  if (s == "cuda" || s.starts_with("cuda:")) {
    QWENQAT_CHECK(torch::cuda::is_available(), flag, " ", s,
                  ": CUDA is not available (this LibTorch has no CUDA or no GPU is "
                  "visible); use --device cpu");
    int index = 0;
    if (s.size() > 5) {
      try {
        index = std::stoi(s.substr(5));
      } catch (const std::exception&) {
        fail(flag, ": bad device \"", s, "\" (use cpu, cuda or cuda:N)");
      }
    }
    QWENQAT_CHECK(index >= 0 && index < static_cast<int>(torch::cuda::device_count()), flag, " ",
                  s, ": no such CUDA device (", torch::cuda::device_count(), " visible)");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail(flag, ": unknown device \"", s, "\" (use cpu, cuda or cuda:N)");
}

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const Qwen2Config& c) {
  const int64_t h = c.hidden_size;
  std::vector<std::pair<std::string, std::vector<int64_t>>> v;
  v.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    v.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), h}});
    v.push_back({p + "self_attn.q_proj.bias", {c.q_dim()}});
    v.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), h}});
    v.push_back({p + "self_attn.k_proj.bias", {c.kv_dim()}});
    v.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), h}});
    v.push_back({p + "self_attn.v_proj.bias", {c.kv_dim()}});
    v.push_back({p + "self_attn.o_proj.weight", {h, c.q_dim()}});
    v.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, h}});
    v.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, h}});
    v.push_back({p + "mlp.down_proj.weight", {h, c.intermediate_size}});
    v.push_back({p + "input_layernorm.weight", {h}});
    v.push_back({p + "post_attention_layernorm.weight", {h}});
  }
  v.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) v.push_back({"lm_head.weight", {c.vocab_size, h}});
  return v;
}

void load_weights(Qwen2ForCausalLMImpl& model, const Checkpoint& ckpt, bool release_pages) {
  std::map<std::string, torch::Tensor> params;
  for (const auto& p : model.named_parameters()) {
    if (is_checkpoint_parameter(p.key())) params.emplace(p.key(), p.value());
  }
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [name, param] : params) {
    const TensorView* t = ckpt.find(name);
    if (t == nullptr) {
      missing.push_back(name);
    } else if (c10::IntArrayRef(t->shape) != param.sizes()) {
      mismatched.push_back(name + " (file " + shape_str(t->shape) + ", config " +
                           shape_str(param.sizes()) + ")");
    }
  }
  for (const auto& name : ckpt.names()) {
    if (params.count(name)) continue;
    // HF ignores both: a tied model's lm_head copy and old rotary buffers.
    if (name == "lm_head.weight" && model.config().tie_word_embeddings) continue;
    if (name.ends_with(".rotary_emb.inv_freq")) continue;
    unexpected.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::ostringstream os;
    os << ckpt.path().string() << " does not match its config.json:";
    auto list = [&os](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      os << "\n  " << what << " (" << names.size() << "):";
      for (const auto& n : names) os << " " << n;
    };
    list("missing tensors", missing);
    list("unexpected tensors", unexpected);
    list("shape mismatches", mismatched);
    fail(os.str(), "\n(check that config.json belongs to these weights)");
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : params) {
    const TensorView& t = ckpt.get(name);
    const auto dtype = to_torch_dtype(t.dtype);
    const size_t esize = dtype_size(t.dtype);
    torch::Tensor src;
    if (reinterpret_cast<uintptr_t>(t.data) % esize == 0) {
      src = torch::from_blob(const_cast<uint8_t*>(t.data), t.shape,
                             torch::TensorOptions().dtype(dtype));
    } else {  // safetensors gives no alignment guarantee
      src = torch::empty(t.shape, torch::TensorOptions().dtype(dtype));
      std::memcpy(src.data_ptr(), t.data, t.nbytes);
    }
    param.copy_(src);
    if (release_pages) ckpt.release(t);
  }
}

Qwen2ForCausalLM load_model(const fs::path& path, const ModuleOptions& options) {
  const Qwen2Config config = Qwen2Config::load(model_dir_of(path) / "config.json");
  Checkpoint ckpt(path);
  Qwen2ForCausalLM model(config, options);
  load_weights(*model, ckpt);
  return model;
}

void init_weights(Qwen2ForCausalLMImpl& model, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto params = model.named_parameters();
  torch::NoGradGuard no_grad;
  for (const auto& [name, shape] : expected_tensors(model.config())) {
    torch::Tensor* p = params.find(name);
    TORCH_CHECK(p != nullptr, "init_weights: the model has no parameter ", name);
    p->copy_(random_tensor(name, shape, gen));
  }
}

std::vector<std::string> copy_tokenizer_files(const fs::path& src_dir, const fs::path& out_dir) {
  static const char* kFiles[] = {"tokenizer.json",          "tokenizer_config.json",
                                 "generation_config.json",  "special_tokens_map.json",
                                 "vocab.json",              "merges.txt",
                                 "added_tokens.json"};
  std::vector<std::string> copied;
  if (src_dir.empty() || !fs::is_directory(src_dir)) return copied;
  if (fs::exists(out_dir) && fs::equivalent(src_dir, out_dir)) return copied;
  for (const char* f : kFiles) {
    if (fs::is_regular_file(src_dir / f)) {
      write_file_atomic(out_dir / f, read_file(src_dir / f));
      copied.push_back(f);
    }
  }
  return copied;
}

namespace {

void write_model_dir(const Qwen2Config& config, const fs::path& out_dir, DType dtype,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     const fs::path& tokenizer_src) {
  std::vector<TensorToWrite> to_write;
  for (const auto& [name, t] : tensors) {
    to_write.push_back({name, dtype, t.sizes().vec(),
                        {static_cast<const uint8_t*>(t.data_ptr()), t.nbytes()}});
  }
  fs::create_directories(out_dir);
  write_safetensors(out_dir / "model.safetensors", to_write);
  Qwen2Config c = config;
  c.torch_dtype = hf_dtype_name(dtype);
  Json j = c.to_json();
  j["architectures"] = Json::array({"Qwen2ForCausalLM"});
  write_json_file(out_dir / "config.json", j);
  copy_tokenizer_files(tokenizer_src, out_dir);
}

}  // namespace

void save_model(Qwen2ForCausalLMImpl& model, const fs::path& out_dir, DType dtype,
                const fs::path& tokenizer_src) {
  const auto tdtype = to_torch_dtype(dtype);
  auto params = model.named_parameters();
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, shape] : expected_tensors(model.config())) {
    const torch::Tensor* p = params.find(name);
    TORCH_CHECK(p != nullptr, "save_model: the model has no parameter ", name);
    tensors.emplace_back(name, p->detach().to(torch::kCPU).to(tdtype).contiguous());
  }
  write_model_dir(model.config(), out_dir, dtype, tensors, tokenizer_src);
}

void init_checkpoint(const Qwen2Config& config, const fs::path& out_dir, DType dtype,
                     uint64_t seed, const fs::path& tokenizer_src, bool progress) {
  const auto tdtype = to_torch_dtype(dtype);
  auto gen = at::detail::createCPUGenerator(seed);
  const auto expected = expected_tensors(config);
  Progress bar("init", config.num_parameters(), "param", progress);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [name, shape] : expected) {
    auto t = random_tensor(name, shape, gen).to(tdtype).contiguous();
    bar.advance(t.numel());
    tensors.emplace_back(name, std::move(t));
  }
  bar.finish();
  write_model_dir(config, out_dir, dtype, tensors, tokenizer_src);
}

}  // namespace qwenqat::models
