// Weight sources (Hugging Face checkpoint, in-memory, .h5 export) and Linear.
#include "inference/weights.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>

#include "data/util/check.h"
#include "data/util/file_io.h"
#include "inference/kernels/elementwise.h"

namespace qwenqat::engine {

SourceTensor WeightSource::get(const std::string& name) const {
  auto t = find(name);
  QWENQAT_CHECK(t.has_value(), "tensor ", name, " is missing from ", origin(),
                "; is this a complete Qwen2ForCausalLM model?");
  return *t;
}

CheckpointSource::CheckpointSource(const std::filesystem::path& dir)
    : dir_(dir), config_(models::Qwen2Config::load(dir)), checkpoint_(dir) {}

std::optional<SourceTensor> CheckpointSource::find(const std::string& name) const {
  const models::TensorView* v = checkpoint_.find(name);
  if (!v) return std::nullopt;
  SourceTensor t;
  t.shape = v->shape;
  t.view = *v;
  return t;
}

std::string CheckpointSource::tokenizer_json() const {
  const auto p =
      std::filesystem::is_directory(dir_) ? dir_ / "tokenizer.json" : std::filesystem::path();
  return !p.empty() && std::filesystem::exists(p) ? read_file(p) : "";
}

std::string CheckpointSource::tokenizer_config_json() const {
  const auto p = std::filesystem::is_directory(dir_) ? dir_ / "tokenizer_config.json"
                                                     : std::filesystem::path();
  return !p.empty() && std::filesystem::exists(p) ? read_file(p) : "";
}

H5Source::H5Source(const std::filesystem::path& path, MapMode mode)
    : file_(path, mode), config_(file_.config()) {}

std::optional<SourceTensor> H5Source::find(const std::string& name) const {
  const format::H5Tensor* t = file_.find(name);
  if (!t) return std::nullopt;
  SourceTensor s;
  s.shape = t->shape;
  s.quantized = t->quantized;
  s.activation_bits = t->activation_bits;
  if (t->quantized) {
    s.packed = t->packed;
  } else {
    s.view = t->data;
  }
  return s;
}

std::shared_ptr<const WeightSource> open_weight_source(const std::filesystem::path& path,
                                                       MapMode mode) {
  namespace fs = std::filesystem;
  QWENQAT_CHECK(fs::exists(path), "--model ", path.string(),
                " does not exist; give a Hugging Face checkpoint directory or a .h5 export");
  if (fs::is_directory(path)) return std::make_shared<CheckpointSource>(path);
  if (path.extension() == ".h5") return std::make_shared<H5Source>(path, mode);
  if (path.extension() == ".safetensors") {
    fail("--model ", path.string(),
         ": give the checkpoint's directory (the engine needs config.json beside the weights)");
  }
  fail("--model ", path.string(),
       ": not a Hugging Face checkpoint directory (config.json + model.safetensors) nor a .h5 "
       "export");
}

MemorySource::MemorySource(models::Qwen2Config config, std::string origin)
    : config_(std::move(config)), origin_(std::move(origin)) {}

namespace {
void check_elements(const std::string& name, const std::vector<int64_t>& shape, size_t given) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  QWENQAT_CHECK(n == static_cast<int64_t>(given), "tensor ", name, ": shape holds ", n,
                " elements but ", given, " were given");
}

// A float tensor's view (dtype F32 or BF16) over a map entry's elements.
template <class T>
SourceTensor float_view(const std::string& name, const std::vector<int64_t>& shape,
                        const std::vector<T>& data, models::DType dtype) {
  SourceTensor t;
  t.shape = shape;
  t.view.name = name;
  t.view.dtype = dtype;
  t.view.shape = shape;
  t.view.data = reinterpret_cast<const uint8_t*>(data.data());
  t.view.nbytes = data.size() * sizeof(T);
  return t;
}
}  // namespace

void MemorySource::add_float(const std::string& name, std::vector<int64_t> shape,
                             std::vector<float> data) {
  check_elements(name, shape, data.size());
  bf16s_.erase(name);
  floats_[name] = {std::move(shape), std::move(data)};
}

void MemorySource::add_bf16(const std::string& name, std::vector<int64_t> shape,
                            std::vector<uint16_t> data) {
  check_elements(name, shape, data.size());
  floats_.erase(name);
  bf16s_[name] = {std::move(shape), std::move(data)};
}

void MemorySource::add_packed(const std::string& name, format::PackedMatrix m) {
  const auto aligned = [](auto& v) {  // a copy, v's memory released
    using Vector = std::decay_t<decltype(v)>;
    HugePageVector<typename Vector::value_type> out(v.begin(), v.end());
    Vector().swap(v);
    return out;
  };
  Packed p;
  p.data = aligned(m.data);
  p.scales = aligned(m.scales);
  p.offsets = aligned(m.offsets);
  p.meta = std::move(m);
  packed_[name] = std::move(p);
}

std::optional<SourceTensor> MemorySource::find(const std::string& name) const {
  if (auto it = floats_.find(name); it != floats_.end())
    return float_view(name, it->second.first, it->second.second, models::DType::kF32);
  if (auto it = bf16s_.find(name); it != bf16s_.end())
    return float_view(name, it->second.first, it->second.second, models::DType::kBF16);
  if (auto it = packed_.find(name); it != packed_.end()) {
    const Packed& p = it->second;
    SourceTensor t;
    t.quantized = true;
    t.shape = {p.meta.rows, p.meta.cols};
    t.packed = format::view_of(p.meta);
    t.packed.data = p.data.data();
    t.packed.scales = p.scales.data();
    t.packed.offsets = p.meta.spec.symmetric ? nullptr : p.offsets.data();
    return t;
  }
  return std::nullopt;
}

Linear Linear::from_source(const SourceTensor& t, const std::string& name, int64_t rows,
                           int64_t cols) {
  QWENQAT_CHECK(t.shape.size() == 2 && t.shape[0] == rows && t.shape[1] == cols, "tensor ", name,
                " has the wrong shape: expected [", rows, ", ", cols,
                "] from config.json; the weights and the config do not match");
  QWENQAT_CHECK(t.activation_bits == 0 || (t.activation_bits >= 2 && t.activation_bits <= 8),
                "tensor ", name, ": activation_bits ", t.activation_bits, " is not 0 or 2..8");
  Linear l;
  l.rows_ = rows;
  l.cols_ = cols;
  l.act_bits_ = t.activation_bits;
  if (t.quantized) {
    QWENQAT_CHECK(t.packed.rows == rows && t.packed.cols == cols && t.packed.data &&
                      t.packed.scales && (t.packed.spec.symmetric || t.packed.offsets),
                  "packed tensor ", name, " is inconsistent (shape or missing scales/offsets)");
    l.packed_ = t.packed;
    l.scheme_ = t.packed.spec.name();
  } else if (t.view.dtype == models::DType::kBF16) {
    QWENQAT_CHECK(t.view.nbytes == static_cast<size_t>(rows * cols) * 2, "tensor ", name, " holds ",
                  t.view.nbytes, " bytes, not the ", rows * cols * 2, " of its bf16 shape");
    l.bf16_.resize(static_cast<size_t>(rows * cols));
    std::memcpy(l.bf16_.data(), t.view.data, t.view.nbytes);
    l.scheme_ = "bf16";
  } else {
    l.f32_.resize(static_cast<size_t>(rows * cols));
    models::convert_to_f32(t.view, l.f32_.data());
    l.scheme_ = "f32";
  }
  return l;
}

void Linear::set_bias(std::vector<float> bias) {
  QWENQAT_CHECK(static_cast<int64_t>(bias.size()) == rows_, "bias of ", rows_,
                " values expected, got ", bias.size());
  bias_ = std::move(bias);
}

uint64_t Linear::weight_bytes() const {
  if (!packed_) return static_cast<uint64_t>(rows_ * cols_) * (bf16_.empty() ? 4 : 2);
  const auto& p = *packed_;
  const uint64_t params = static_cast<uint64_t>(p.rows * p.groups_per_row()) * 2;
  return static_cast<uint64_t>(p.rows * p.row_bytes) + params * (p.offsets ? 2 : 1);
}

// The input of one layer as its kernels take it (see Linear::forward).
struct Linear::Input {
  const float* x = nullptr;  // [n, cols] float input (fake-quantized when per token)
  bool q8 = false;           // use the int8 kernels with xq
  int token_bits = 0;        // per-token bits, 0 for Q8 blocks / float
  Q8Activations xq;
  std::vector<float> xf;  // [n, cols] fake-quantized x for the float kernels
};

Linear::InputMode Linear::input_mode(ActQuant act) const {
  InputMode m;
  m.token_bits = act == ActQuant::kAuto ? act_bits_ : 0;
  const bool int8_kernel = packed_ && supports_q8(*packed_);
  m.q8 = int8_kernel && (act == ActQuant::kQ8 || m.token_bits > 0);
  return m;
}

// Inputs of at least this many elements are quantized on every thread of the
// pool (rows split; a round trip costs ~1 us, a 1536-element row ~0.7 us).
constexpr int64_t kParallelQuantElems = 16384;

void Linear::prepare(const float* x, int64_t n, ActQuant act, Input* in, ThreadPool& pool) const {
  const InputMode m = input_mode(act);
  in->q8 = m.q8;
  in->token_bits = m.token_bits;
  in->x = x;
  if (m.q8) {
    size_q8(n, cols_, &in->xq);
    const auto rows = [&](int64_t b0, int64_t b1) {
      if (m.token_bits > 0) {
        quantize_per_token_rows(x, cols_, m.token_bits, b0, b1, &in->xq);
      } else {
        quantize_q8_rows(x, cols_, b0, b1, &in->xq);
      }
    };
    pool.parallel_ranges(n, std::max<int64_t>(2, (kParallelQuantElems + cols_ - 1) / cols_), rows);
  } else if (m.token_bits > 0) {
    in->xf.assign(x, x + n * cols_);
    fake_quantize_per_token(in->xf.data(), n, cols_, cols_, m.token_bits);
    in->x = in->xf.data();
  }
}

bool Linear::same_input(const Linear& o, ActQuant act) const {
  const InputMode a = input_mode(act), b = o.input_mode(act);
  return cols_ == o.cols_ && a.q8 == b.q8 && a.token_bits == b.token_bits;
}

void Linear::run_chunk(const Input& in, int64_t n, float* y, int64_t c, KernelIsa isa) const {
  const int64_t r0 = c * kRowsPerChunk, r1 = std::min(rows_, r0 + kRowsPerChunk);
  if (in.q8) {
    q8_matmul_rows(*packed_, in.xq, y, rows_, r0, r1, isa);
  } else if (packed_) {
    packed_matmul_rows(*packed_, in.x, n, cols_, y, rows_, r0, r1, isa);
  } else if (!bf16_.empty()) {
    bf16_matmul_rows(bf16_.data(), cols_, in.x, n, cols_, y, rows_, r0, r1, isa);
  } else {
    float_matmul_rows(f32_.data(), cols_, in.x, n, cols_, y, rows_, r0, r1, isa);
  }
  if (!bias_.empty()) {
    for (int64_t b = 0; b < n; ++b) {
      float* yb = y + b * rows_;
      for (int64_t r = r0; r < r1; ++r) yb[r] += bias_[r];
    }
  }
}

void Linear::forward(const float* x, int64_t n, float* y, ThreadPool& pool, KernelIsa isa,
                     ActQuant act) const {
  forward_shared({{this, y}}, x, n, pool, isa, act);
}

namespace {
// [front, back) of a task's chunks in one word: its owner takes chunks from
// the front, a thread done with its own from the back. Thread-safe.
uint64_t pack_range(int64_t front, int64_t back) {
  return static_cast<uint64_t>(front) << 32 | static_cast<uint64_t>(back);
}
struct alignas(64) ChunkRange {
  std::atomic<uint64_t> v{0};
  int64_t take_front() { return take(true); }
  int64_t take_back() { return take(false); }
  int64_t take(bool front) {
    uint64_t cur = v.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t f = static_cast<int64_t>(cur >> 32),
                    b = static_cast<int64_t>(cur & 0xffffffffu);
      if (f >= b) return -1;
      const uint64_t next = front ? pack_range(f + 1, b) : pack_range(f, b - 1);
      if (v.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return front ? f : b - 1;
    }
  }
};
}  // namespace

void Linear::forward_shared(const std::vector<std::pair<const Linear*, float*>>& outs,
                            const float* x, int64_t n, ThreadPool& pool, KernelIsa isa,
                            ActQuant act) {
  // One prepared input per run of layers that take it the same way. Kept per
  // calling thread (forward_shared does not nest) so that a long prompt's
  // quantized activations, tens of MB, reuse their buffers instead of being
  // allocated, page-faulted and zeroed afresh for every layer.
  thread_local std::vector<Input> inputs;
  if (inputs.size() < outs.size()) inputs.resize(outs.size());
  std::vector<const Input*> input_of(outs.size());
  std::vector<int64_t> first_chunk(outs.size() + 1, 0);  // prefix sums of chunk counts
  for (size_t i = 0; i < outs.size(); ++i) {
    const Linear& l = *outs[i].first;
    QWENQAT_CHECK(l.cols_ == outs[0].first->cols_, "Linear::forward_shared: layers of ",
                  outs[0].first->cols_, " and ", l.cols_, " inputs cannot share one input");
    if (i > 0 && l.same_input(*outs[i - 1].first, act)) {
      input_of[i] = input_of[i - 1];
    } else {
      l.prepare(x, n, act, &inputs[i], pool);
      input_of[i] = &inputs[i];
    }
    first_chunk[i + 1] = first_chunk[i] + (l.rows_ + kRowsPerChunk - 1) / kRowsPerChunk;
  }
  // Each task owns a contiguous run of the layers' chunks and takes them in
  // order, so each thread streams one sequential range of weights; a thread
  // done with its run takes the other runs' last chunks, one at a time from
  // their ends (the static split left the faster core spinning at every
  // matmul: paired per-step timing on Zen 5, 1.5B shapes: w4g32 decode
  // 0.98-0.99x time, batch 16 0.98-0.99x, w8g32 0.99-1.0x). Chunk boundaries,
  // and so the results, depend neither on the thread count nor on which
  // thread runs a chunk.
  const int64_t chunks = first_chunk.back();
  const int64_t tasks = std::min<int64_t>(chunks, pool.size());
  const auto run = [&](int64_t c) {
    const size_t i =
        std::upper_bound(first_chunk.begin(), first_chunk.end(), c) - first_chunk.begin() - 1;
    outs[i].first->run_chunk(*input_of[i], n, outs[i].second, c - first_chunk[i], isa);
  };
  QWENQAT_CHECK(chunks < (int64_t{1} << 31), "Linear::forward_shared: ", chunks,
                " row chunks do not fit the work split");
  std::vector<ChunkRange> ranges(static_cast<size_t>(tasks));
  for (int64_t t = 0; t < tasks; ++t)
    ranges[t].v.store(pack_range(chunks * t / tasks, chunks * (t + 1) / tasks));
  pool.parallel_for(tasks, [&](int64_t t) {
    for (int64_t c; (c = ranges[t].take_front()) >= 0;) run(c);
    for (int64_t k = 1; k < tasks; ++k) {
      ChunkRange& victim = ranges[(t + k) % tasks];
      for (int64_t c; (c = victim.take_back()) >= 0;) run(c);
    }
  });
}

void Linear::row(int64_t r, float* out, KernelIsa isa) const {
  if (packed_) {
    dequantize_rows(*packed_, r, r + 1, out, isa);
  } else if (!bf16_.empty()) {
    bf16_to_f32_row(bf16_.data() + r * cols_, out, cols_);
  } else {
    std::memcpy(out, f32_.data() + r * cols_, cols_ * sizeof(float));
  }
}

}  // namespace qwenqat::engine
