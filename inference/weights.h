// Where the engine's weights come from, and the Linear layer built on them.
// A WeightSource hands out tensors by Hugging Face name, either as a float
// tensor (F32/F16/BF16 bytes, converted to float32 when the model is built) or
// as a packed quantized matrix (format::PackedView, used in place, zero-copy).
// Sources: a Hugging Face checkpoint (float baseline), an in-memory source
// (tests, random-weight benchmarks) and the qwenqat .h5 export (zero-copy).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "export/format/h5_model_reader.h"
#include "export/format/packed_tensor.h"
#include "inference/kernels/act_quant.h"
#include "inference/kernels/aligned.h"
#include "inference/kernels/packed_matmul.h"
#include "inference/thread_pool.h"
#include "models/checkpoint/qwen2_config.h"
#include "models/checkpoint/safetensors.h"

namespace qwenqat::engine {

// One tensor of a source. Pointers stay valid while the source lives.
struct SourceTensor {
  std::vector<int64_t> shape;  // logical shape
  bool quantized = false;
  models::TensorView view;    // !quantized: dtype F32/F16/BF16 (or F64) + bytes
  format::PackedView packed;  // quantized: codes, fp16 scales/offsets
  // Per-token dynamic activation bits the layer was trained with (0: float
  // inputs); from the export's "activation_bits" attribute.
  int activation_bits = 0;
};

// Read-only after construction; safe to share between threads.
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual models::Qwen2Config config() const = 0;
  // nullopt when the source has no tensor of that name.
  virtual std::optional<SourceTensor> find(const std::string& name) const = 0;
  // Names the source in error messages (a path, "random weights", ...).
  virtual std::string origin() const = 0;
  // Tokenizer files stored with the model ("" when absent).
  virtual std::string tokenizer_json() const { return ""; }
  virtual std::string tokenizer_config_json() const { return ""; }
  // Throws "tensor NAME is missing from ORIGIN" when absent.
  SourceTensor get(const std::string& name) const;
};

// A Hugging Face checkpoint directory (config.json + safetensors), in float.
class CheckpointSource : public WeightSource {
 public:
  explicit CheckpointSource(const std::filesystem::path& dir);
  models::Qwen2Config config() const override { return config_; }
  std::optional<SourceTensor> find(const std::string& name) const override;
  std::string origin() const override { return dir_.string(); }
  std::string tokenizer_json() const override;
  std::string tokenizer_config_json() const override;

 private:
  std::filesystem::path dir_;
  models::Qwen2Config config_;
  models::Checkpoint checkpoint_;
};

// Owns its tensors: float32 arrays and packed matrices. Not thread-safe while
// being filled; read-only afterwards.
class MemorySource : public WeightSource {
 public:
  explicit MemorySource(models::Qwen2Config config, std::string origin = "in-memory weights");
  // add_float and add_bf16 replace any float tensor of the same name.
  void add_float(const std::string& name, std::vector<int64_t> shape, std::vector<float> data);
  // A bf16 tensor (uint16_t bits), as a bf16 checkpoint holds it.
  void add_bf16(const std::string& name, std::vector<int64_t> shape, std::vector<uint16_t> data);
  // Takes m's spec and shape and copies its codes, scales and offsets (their
  // memory released) onto 64-byte boundaries, as the .h5 export lays them
  // out, and large ones onto huge pages, as a .h5 loaded by copy lies (the
  // kernels read packed tensors in place; from a std::vector every 64-byte
  // load of a row spanned two cache lines and every 4 KB a TLB miss).
  void add_packed(const std::string& name, format::PackedMatrix m);
  models::Qwen2Config config() const override { return config_; }
  std::optional<SourceTensor> find(const std::string& name) const override;
  std::string origin() const override { return origin_; }

 private:
  models::Qwen2Config config_;
  std::string origin_;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> floats_;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<uint16_t>>> bf16s_;
  struct Packed {
    format::PackedMatrix meta;  // spec and shape; its buffers moved out
    HugePageVector<uint8_t> data;
    HugePageVector<uint16_t> scales, offsets;
  };
  std::map<std::string, Packed> packed_;
};

// The qwenqat .h5 export (format::H5ModelFile): packed tensors are used in
// place from the memory map, float tensors converted when the model is built.
class H5Source : public WeightSource {
 public:
  // Opens and validates the file (format version, layout, byte ranges);
  // throws qwenqat::Error naming the file and what is wrong. `mode`: use the
  // file's pages in place or a copy on huge pages (MappedFile, MapMode).
  explicit H5Source(const std::filesystem::path& path, MapMode mode = MapMode::kMap);
  models::Qwen2Config config() const override { return config_; }
  std::optional<SourceTensor> find(const std::string& name) const override;
  std::string origin() const override { return file_.path().string(); }
  std::string tokenizer_json() const override { return file_.tokenizer_json_text(); }
  std::string tokenizer_config_json() const override { return file_.tokenizer_config_text(); }
  // The prompt template recorded at export ("" when absent).
  const std::string& prompt_template() const { return file_.prompt_template(); }

 private:
  format::H5ModelFile file_;
  models::Qwen2Config config_;
};

// Opens a --model path: a Hugging Face checkpoint directory (float baseline)
// or a .h5 export. Throws qwenqat::Error naming the path when neither.
// `mode` applies to .h5 exports (a checkpoint is converted to float32 anyway).
std::shared_ptr<const WeightSource> open_weight_source(const std::filesystem::path& path,
                                                       MapMode mode = MapMode::kMap);
// The MapMode of the CLI's --mmap flag (off: a copy on huge pages).
inline MapMode map_mode(bool mmap) { return mmap ? MapMode::kMap : MapMode::kCopy; }

// A [rows, cols] weight (Hugging Face nn.Linear layout: out x in) with an
// optional bias, float32 (owned) or packed (view into the source). Immutable
// after construction; forward() may run concurrently on different pools.
class Linear {
 public:
  Linear() = default;
  // Builds from a source tensor; bf16 tensors are kept as bf16 (half the
  // bytes; the kernels widen them exactly, so the results are those of their
  // float32 values), other float tensors are converted to float32.
  // `name` is used in errors; expected rows/cols are checked.
  static Linear from_source(const SourceTensor& t, const std::string& name, int64_t rows,
                            int64_t cols);
  void set_bias(std::vector<float> bias);  // rows floats

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool is_packed() const { return packed_.has_value(); }
  const format::PackedView* packed() const { return packed_ ? &*packed_ : nullptr; }
  const std::string& scheme() const { return scheme_; }  // "f32", "bf16" or e.g. "w4g32"
  int activation_bits() const { return act_bits_; }      // 0 or 2..8 (trained, per token)
  // Bytes a full pass reads: packed codes + scales (+ offsets), or 4 (bf16: 2)
  // per float.
  uint64_t weight_bytes() const;

  // y [n, rows] = x [n, cols] . W^T (+ bias). Rows are split into chunks of
  // kRowsPerChunk over the pool, so the result does not depend on its size.
  // act (kernels/act_quant.h): kAuto quantizes x per token with
  // activation_bits() when that is > 0 (int8 kernel when the weight
  // supports_q8(), else fake-quantized float); kQ8 quantizes x to int8 blocks
  // when the weight supports_q8(); kNone, and every other case, keeps float x.
  void forward(const float* x, int64_t n, float* y, ThreadPool& pool, KernelIsa isa,
               ActQuant act = ActQuant::kAuto) const;
  // forward() of several layers on the same x [n, cols] (q/k/v, gate/up) in
  // one parallel_for: outs = (layer, y) pairs, each y [n, layer.rows()]. x is
  // quantized once for consecutive layers that take it the same way. The
  // same results as one forward() per layer. Thread-safe across calling
  // threads; the quantized inputs live in per-thread buffers that are kept
  // (and reused) between calls, sized by the largest [n, cols] seen.
  static void forward_shared(const std::vector<std::pair<const Linear*, float*>>& outs,
                             const float* x, int64_t n, ThreadPool& pool, KernelIsa isa,
                             ActQuant act = ActQuant::kAuto);
  // Row r of W as float32 (embedding lookup): out[cols].
  void row(int64_t r, float* out, KernelIsa isa) const;

 private:
  struct Input;
  struct InputMode {
    bool q8 = false;     // the int8 kernels (Q8 blocks, or per token when token_bits > 0)
    int token_bits = 0;  // per-token activation bits, 0: none
  };
  InputMode input_mode(ActQuant act) const;  // how prepare() takes x
  // Quantizes x for the int8 kernels on the pool's threads (rows split).
  void prepare(const float* x, int64_t n, ActQuant act, Input* in, ThreadPool& pool) const;
  bool same_input(const Linear& o, ActQuant act) const;  // prepare() gives the same Input
  void run_chunk(const Input& in, int64_t n, float* y, int64_t c, KernelIsa isa) const;

  int64_t rows_ = 0, cols_ = 0;
  std::string scheme_;
  int act_bits_ = 0;
  AlignedVector<float> f32_;      // [rows, cols] when float32 (starts on a 64-byte line)
  AlignedVector<uint16_t> bf16_;  // [rows, cols] bf16 bits when the source is bf16
  std::optional<format::PackedView> packed_;
  std::vector<float> bias_;  // empty or [rows]
};

}  // namespace qwenqat::engine
