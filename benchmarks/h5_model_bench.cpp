// h5_model_bench: speed and size of the qwenqat HDF5 model file at the real
// shapes of DeepSeek-R1-Distill-Qwen-1.5B (config from ../shared when present,
// else built in). For each scheme it writes a random-weight model (bf16: all
// tensors bf16; w*: embeddings, lm_head and the 196 linear weights quantized with
// the scheme, norms and biases f32), then opens and validates it, and touches
// every tensor byte through the zero-copy pointers. Prints the file size, its
// ratio to bf16 and the timings (writer calls only; generating the random
// weights is not timed).
//
// Usage: h5_model_bench [--out DIR] [--schemes bf16,w8c,w4g32,w4g128] [--keep]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "data/util/json_io.h"
#include "export/format/h5_model_reader.h"
#include "export/format/h5_model_writer.h"

using namespace qwenqat;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Fast deterministic filler (xorshift64).
struct Rng {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  void fill(uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      const uint64_t v = next();
      std::memcpy(p + i, &v, 8);
    }
    for (; i < n; ++i) p[i] = uint8_t(next());
  }
};

struct Shape {
  std::string name;
  int64_t rows, cols;
  bool linear;  // a matrix that quantized schemes quantize
};

std::vector<Shape> model_shapes(const models::Qwen2Config& c) {
  std::vector<Shape> v;
  const int64_t h = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), m = c.intermediate_size;
  v.push_back({"model.embed_tokens.weight", c.vocab_size, h, true});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    v.push_back({p + "input_layernorm.weight", 1, h, false});
    v.push_back({p + "post_attention_layernorm.weight", 1, h, false});
    v.push_back({p + "self_attn.q_proj.weight", q, h, true});
    v.push_back({p + "self_attn.q_proj.bias", 1, q, false});
    v.push_back({p + "self_attn.k_proj.weight", kv, h, true});
    v.push_back({p + "self_attn.k_proj.bias", 1, kv, false});
    v.push_back({p + "self_attn.v_proj.weight", kv, h, true});
    v.push_back({p + "self_attn.v_proj.bias", 1, kv, false});
    v.push_back({p + "self_attn.o_proj.weight", h, q, true});
    v.push_back({p + "mlp.gate_proj.weight", m, h, true});
    v.push_back({p + "mlp.up_proj.weight", m, h, true});
    v.push_back({p + "mlp.down_proj.weight", h, m, true});
  }
  v.push_back({"model.norm.weight", 1, h, false});
  if (!c.tie_word_embeddings) v.push_back({"lm_head.weight", c.vocab_size, h, true});
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::filesystem::path out_dir = std::filesystem::temp_directory_path();
  std::string schemes = "bf16,w8c,w4g32,w4g128";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) {
      out_dir = argv[++i];
    } else if (a == "--schemes" && i + 1 < argc) {
      schemes = argv[++i];
    } else if (a == "--keep") {
      keep = true;
    } else {
      std::fprintf(stderr,
                   "usage: h5_model_bench [--out DIR (default: the temp dir)] "
                   "[--schemes LIST (default: bf16,w8c,w4g32,w4g128)] [--keep]\n");
      return 2;
    }
  }
  try {
    const std::filesystem::path shared_cfg = std::filesystem::path(QWENQAT_SHARED_DIR) /
                                             "models/deepseek-r1-distill-qwen-1.5b/config.json";
    std::string config_text = R"({"model_type": "qwen2", "vocab_size": 151936, "hidden_size": 1536,
      "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
      "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
      "tie_word_embeddings": false})";
    if (std::filesystem::exists(shared_cfg)) config_text = read_file(shared_cfg);
    const auto config = models::Qwen2Config::from_json(parse_json(config_text, "config.json"));
    const auto shapes = model_shapes(config);
    std::printf("%-8s %14s %8s %9s %9s %9s\n", "scheme", "file bytes", "vs bf16", "write s",
                "open s", "touch s");
    double bf16_bytes = 2.0 * double(config.num_parameters());
    size_t pos = 0;
    while (pos <= schemes.size()) {
      size_t end = schemes.find(',', pos);
      if (end == std::string::npos) end = schemes.size();
      const std::string scheme = schemes.substr(pos, end - pos);
      pos = end + 1;
      if (scheme.empty()) continue;
      const bool is_bf16 = scheme == "bf16";
      const quant::QuantSpec spec = is_bf16 ? quant::QuantSpec{} : quant::parse_spec(scheme);
      const auto path = out_dir / ("h5_model_bench_" + scheme + ".h5");
      Rng rng;
      double write_s = 0;
      {
        auto t0 = Clock::now();
        format::H5ModelWriter w(path);
        w.set_config_json(config_text);
        w.set_quantization_config_json(is_bf16 ? "{}" : "{\"default\": \"" + scheme + "\"}");
        write_s += seconds_since(t0);
        for (const Shape& s : shapes) {
          const std::vector<int64_t> shape =
              s.rows == 1 ? std::vector<int64_t>{s.cols} : std::vector<int64_t>{s.rows, s.cols};
          if (is_bf16 || !s.linear) {
            const auto dtype = is_bf16 ? models::DType::kBF16 : models::DType::kF32;
            std::vector<uint8_t> bytes(size_t(s.rows * s.cols) * models::dtype_size(dtype));
            rng.fill(bytes.data(), bytes.size());
            t0 = Clock::now();
            w.add_float_tensor(s.name, dtype, shape, bytes);
            write_s += seconds_since(t0);
            continue;
          }
          format::PackedMatrix p;
          p.spec = spec;
          p.rows = s.rows;
          p.cols = s.cols;
          p.row_bytes = format::packed_row_bytes(s.cols, spec.bits);
          p.data.resize(size_t(p.rows * p.row_bytes));
          rng.fill(p.data.data(), p.data.size());
          p.scales.assign(size_t(p.rows * spec.groups_per_row(s.cols)), 0x2000);
          if (!spec.symmetric) p.offsets.assign(p.scales.size(), 0xa000);
          t0 = Clock::now();
          w.add_packed_tensor(s.name, format::view_of(p));
          write_s += seconds_since(t0);
        }
        t0 = Clock::now();
        w.commit();
        write_s += seconds_since(t0);
      }
      auto t0 = Clock::now();
      const format::H5ModelFile f(path);
      const double open_s = seconds_since(t0);
      t0 = Clock::now();
      uint64_t sum = 0;
      for (const auto& t : f.tensors()) {
        const uint8_t* p = t.quantized ? t.packed.data : t.data.data;
        const size_t n = t.quantized ? size_t(t.packed.rows * t.packed.row_bytes) : t.data.nbytes;
        for (size_t i = 0; i < n; i += 64) sum += p[i];
      }
      const double touch_s = seconds_since(t0);
      const double bytes = double(f.file_size());
      std::printf("%-8s %14.0f %8.3f %9.2f %9.3f %9.2f   (checksum %llu)\n", scheme.c_str(), bytes,
                  bytes / bf16_bytes, write_s, open_s, touch_s,
                  static_cast<unsigned long long>(sum % 1000));
      if (!keep) std::filesystem::remove(path);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "h5_model_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
