// Run-time ISA selection, the scalar reference kernels, and the blocking of
// the GEMM (weight tiles of kTileRows rows dequantized once, multiplied with
// every activation row in column blocks of kKBlock that stay in cache).
#include "inference/kernels/packed_matmul.h"

#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "data/util/check.h"
#include "inference/kernels/aligned.h"
#include "inference/kernels/avx2_kernels.h"
#include "inference/kernels/avx512_kernels.h"
#include "inference/kernels/elementwise.h"

namespace qwenqat::engine {
namespace {

constexpr int64_t kTileRows = 16;
constexpr int64_t kKBlock = 512;

KernelIsa initial_isa() {
  if (const char* env = std::getenv("QWENQAT_ENGINE_KERNELS")) {
    const KernelIsa isa = parse_isa(env, "QWENQAT_ENGINE_KERNELS");
    if (isa == KernelIsa::kScalar || cpu_has_avx2()) return isa;
  }
  return cpu_has_avx2() ? KernelIsa::kAvx2 : KernelIsa::kScalar;
}

std::atomic<int>& isa_slot() {
  static std::atomic<int> slot{static_cast<int>(initial_isa())};
  return slot;
}

// A per-thread scratch buffer of at least n floats, 64-byte aligned (the
// 16-lane kernels load whole cache lines from it).
float* scratch(int64_t n) {
  thread_local AlignedVector<float> buf;
  return aligned_scratch(buf, static_cast<size_t>(n));
}

}  // namespace

const char* isa_name(KernelIsa isa) { return isa == KernelIsa::kAvx2 ? "avx2" : "scalar"; }

bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return has;
}

bool cpu_has_avx_vnni() {
  static const bool has = [] {
    const char* env = std::getenv("QWENQAT_ENGINE_VNNI");
    return cpu_has_avx2() && __builtin_cpu_supports("avxvnni") &&
           !(env != nullptr && std::string(env) == "0");
  }();
  return has;
}

bool cpu_has_avx512() {
  static const bool has = [] {
    const char* env = std::getenv("QWENQAT_ENGINE_AVX512");
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && !(env != nullptr && std::string(env) == "0");
  }();
  return has;
}

bool cpu_has_avx512_vnni() {
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
  return has;
}

bool cpu_has_amx() {
  static const bool has = [] {
    const char* env = std::getenv("QWENQAT_ENGINE_AMX");
    if (!cpu_has_avx512() || !__builtin_cpu_supports("amx-tile") ||
        !__builtin_cpu_supports("amx-int8") || (env != nullptr && std::string(env) == "0"))
      return false;
#if defined(__linux__) && defined(SYS_arch_prctl)
    // Linux hands out the AMX tile state only on request (per process).
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
    return false;
#endif
  }();
  return has;
}

KernelIsa active_isa() { return static_cast<KernelIsa>(isa_slot().load()); }

void set_kernel_isa(KernelIsa isa) {
  QWENQAT_CHECK(isa == KernelIsa::kScalar || cpu_has_avx2(),
                "the AVX2 kernels were requested but this CPU lacks AVX2/FMA/F16C; use "
                "--kernels scalar");
  isa_slot().store(static_cast<int>(isa));
}

KernelIsa parse_isa(const std::string& s, const std::string& what) {
  if (s == "scalar") return KernelIsa::kScalar;
  if (s == "avx2") return KernelIsa::kAvx2;
  if (s == "auto") return cpu_has_avx2() ? KernelIsa::kAvx2 : KernelIsa::kScalar;
  fail(what, ": unknown kernel set '", s, "'; use auto, scalar or avx2");
}

void dequantize_rows(const format::PackedView& w, int64_t r0, int64_t r1, float* out,
                     KernelIsa isa) {
  const bool fast = isa == KernelIsa::kAvx2 && avx2::supports_dequant(w);
  for (int64_t r = r0; r < r1; ++r) {
    float* o = out + (r - r0) * w.cols;
    if (fast) {
      avx2::dequantize_row(w, r, o);
    } else {
      format::dequantize_row(w, r, o);
    }
  }
}

float dot(const float* a, const float* b, int64_t n, KernelIsa isa) {
  if (isa == KernelIsa::kAvx2) return avx2::dot(a, b, n);
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void packed_matmul_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                        float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa) {
  const int64_t cols = w.cols;
  if (isa == KernelIsa::kScalar) {
    // The reference: dequantize_row, then a sequential dot per activation row.
    float* row = scratch(cols);
    for (int64_t r = r0; r < r1; ++r) {
      format::dequantize_row(w, r, row);
      for (int64_t b = 0; b < n; ++b) {
        const float* xb = x + b * x_stride;
        float s = 0.0f;
        for (int64_t c = 0; c < cols; ++c) s += row[c] * xb[c];
        y[b * y_stride + r] = s;
      }
    }
    return;
  }
  if (n == 1 && avx2::supports_gemv(w)) {
    if (cpu_has_avx512()) {
      avx512::gemv_rows(w, x, y, r0, r1, scratch(w.groups_per_row()));
    } else {
      avx2::gemv_rows(w, x, y, r0, r1, scratch(w.groups_per_row()));
    }
    return;
  }
  if (n <= kMaxMultiVector && avx2::supports_gemv(w)) {
    if (cpu_has_avx512()) {
      avx512::multi_gemv_rows(w, x, n, x_stride, y, y_stride, r0, r1,
                              scratch(avx512::multi_gemv_scratch_floats(r1 - r0, n)));
    } else {
      avx2::multi_gemv_rows(w, x, n, x_stride, y, y_stride, r0, r1,
                            scratch(avx2::multi_gemv_scratch_floats(r1 - r0, n)));
    }
    return;
  }
  tiled_matmul_rows(w, x, n, x_stride, y, y_stride, r0, r1, isa);
}

void tiled_matmul_rows(const format::PackedView& w, const float* x, int64_t n, int64_t x_stride,
                       float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa) {
  QWENQAT_CHECK(isa == KernelIsa::kAvx2, "tiled_matmul_rows needs the AVX2 kernels");
  const int64_t cols = w.cols;
  float* tile = scratch(kTileRows * cols);
  for (int64_t rt = r0; rt < r1; rt += kTileRows) {
    const int64_t tr = std::min(kTileRows, r1 - rt);
    dequantize_rows(w, rt, rt + tr, tile, isa);
    for (int64_t b = 0; b < n; ++b) std::memset(y + b * y_stride + rt, 0, tr * sizeof(float));
    for (int64_t k0 = 0; k0 < cols; k0 += kKBlock) {
      avx2::gemm_tile_accumulate(tile, tr, cols, x, n, x_stride, y + rt, y_stride, k0,
                                 std::min(cols, k0 + kKBlock));
    }
  }
}

namespace {

// float_matmul_rows for float32 or bf16 (uint16_t bits) weights: the scalar
// form converts a bf16 block to float32 first (exactly) and then takes the
// same Eigen product, the AVX2 form widens in its loads; either way the same
// bits as the float32 weights of the same values.
template <class T>
void dense_matmul_rows(const T* w, int64_t cols, const float* x, int64_t n, int64_t x_stride,
                       float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa) {
  if (isa == KernelIsa::kScalar) {
    using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using CMap = Eigen::Map<const Mat, 0, Eigen::OuterStride<>>;
    using MMap = Eigen::Map<Mat, 0, Eigen::OuterStride<>>;
    const float* wf = nullptr;
    if constexpr (std::is_same_v<T, float>) {
      wf = w + r0 * cols;
    } else {
      thread_local AlignedVector<float> block;  // rows [r0, r1) as float32
      block.resize(static_cast<size_t>((r1 - r0) * cols));
      bf16_to_f32_row(w + r0 * cols, block.data(), (r1 - r0) * cols);
      wf = block.data();
    }
    CMap xm(x, n, cols, Eigen::OuterStride<>(x_stride));
    CMap wm(wf, r1 - r0, cols, Eigen::OuterStride<>(cols));
    MMap ym(y + r0, n, r1 - r0, Eigen::OuterStride<>(y_stride));
    ym.noalias() = xm * wm.transpose();
    return;
  }
  if constexpr (!std::is_same_v<T, float>) {
    if (n > 1) {  // tiles of 16 rows widened once for all n rows, as the packed GEMM's
      float* tile = scratch(kTileRows * cols);
      for (int64_t rt = r0; rt < r1; rt += kTileRows) {
        const int64_t tr = std::min(kTileRows, r1 - rt);
        bf16_to_f32_row(w + rt * cols, tile, tr * cols);
        dense_matmul_rows(tile, cols, x, n, x_stride, y + rt, y_stride, 0, tr, isa);
      }
      return;
    }
  }
  for (int64_t b = 0; b < n; ++b) std::memset(y + b * y_stride + r0, 0, (r1 - r0) * sizeof(float));
  // Column blocks keep x's block in cache for the rows of a batch; a single
  // x row stays in cache anyway, and whole rows stream better (decode of the
  // 1.5B shapes, two threads, Zen 4: bf16 5.6 -> 7.4-8.1 tokens/s, f32
  // 4.4 -> 4.5-5.4).
  const int64_t kb = n == 1 ? cols : kKBlock;
  for (int64_t k0 = 0; k0 < cols; k0 += kb) {
    avx2::gemm_tile_accumulate(w + r0 * cols, r1 - r0, cols, x, n, x_stride, y + r0, y_stride, k0,
                               std::min(cols, k0 + kb));
  }
}

}  // namespace

void float_matmul_rows(const float* w, int64_t cols, const float* x, int64_t n, int64_t x_stride,
                       float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa) {
  dense_matmul_rows(w, cols, x, n, x_stride, y, y_stride, r0, r1, isa);
}

void bf16_matmul_rows(const uint16_t* w, int64_t cols, const float* x, int64_t n, int64_t x_stride,
                      float* y, int64_t y_stride, int64_t r0, int64_t r1, KernelIsa isa) {
  dense_matmul_rows(w, cols, x, n, x_stride, y, y_stride, r0, r1, isa);
}

}  // namespace qwenqat::engine
