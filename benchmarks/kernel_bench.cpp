// kernel_bench: per-core rates of the engine's packed matmul kernels, in
// thread CPU time (so a loaded machine still gives comparable figures), on
// one random weight matrix (default 256 x 1536: resident in L2) for each
// batch size n:
//   gemv  packed_matmul_rows, float activations (n = 1: GEMV; 2..16:
//         multi-vector GEMV; > 16: tiled GEMM)
//   tile  tiled_matmul_rows: dequantized 16-row tiles + float GEMM (the n > 1
//         path before the multi-vector GEMV)
//   q8    q8_matmul_rows, int8 activations (quantization of x included)
// Prints G weight-MAC/s per core (rows * cols * n multiply-adds per call).
//
// Usage: kernel_bench [--rows R] [--cols C] [--bits 4,8] [--n 1,2,4,8,16,64]
//                     [--kernels gemv,tile,q8] [--seconds S] [--isa avx2|scalar]
#include <time.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "data/util/half.h"
#include "inference/kernels/act_quant.h"
#include "inference/kernels/packed_matmul.h"

using namespace qwenqat;
using namespace qwenqat::engine;

namespace {

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

format::PackedMatrix random_matrix(int64_t rows, int64_t cols, int bits, std::mt19937& rng) {
  format::PackedMatrix m;
  m.spec = {bits, 32, true};
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = format::packed_row_bytes(cols, bits);
  m.data.resize(static_cast<size_t>(rows * m.row_bytes));
  for (auto& b : m.data) b = static_cast<uint8_t>(rng());
  m.scales.assign(static_cast<size_t>(rows * (cols / 32)), f32_to_fp16(0.01f));
  return m;
}

// Runs fn until `seconds` of thread CPU time have passed; returns seconds/call.
template <class F>
double time_per_call(F&& fn, double seconds) {
  fn();  // warm-up
  int64_t calls = 0;
  const double t0 = thread_cpu_seconds();
  double t = t0;
  while (t - t0 < seconds) {
    fn();
    ++calls;
    t = thread_cpu_seconds();
  }
  return (t - t0) / static_cast<double>(calls);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 256, cols = 1536;
  std::string bits_list = "4,8", n_list = "1,2,4,8,16,64", kernels = "gemv,tile,q8", isa_s = "avx2";
  double seconds = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--rows")
      rows = std::stoll(v);
    else if (a == "--cols")
      cols = std::stoll(v);
    else if (a == "--bits")
      bits_list = v;
    else if (a == "--n")
      n_list = v;
    else if (a == "--kernels")
      kernels = v;
    else if (a == "--seconds")
      seconds = std::stod(v);
    else if (a == "--isa")
      isa_s = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const KernelIsa isa = parse_isa(isa_s, "--isa");
  std::mt19937 rng(1);
  std::printf("kernel_bench: %lld x %lld, isa %s%s, G weight-MAC/s per core (thread CPU time)\n",
              static_cast<long long>(rows), static_cast<long long>(cols), isa_name(isa),
              isa != KernelIsa::kAvx2 ? ""
              : cpu_has_amx() ? " (GEMV with AVX-512, q8 with AMX tiles from batch 8 and AVX-512 "
                                "VNNI below; QWENQAT_ENGINE_AMX=0 / QWENQAT_ENGINE_AVX512=0 turn "
                                "them off)"
              : cpu_has_avx512_vnni()
                  ? " (GEMV and q8 with AVX-512/VNNI; QWENQAT_ENGINE_AVX512=0 turns it off)"
              : cpu_has_avx_vnni() ? " (q8 with AVX-VNNI; QWENQAT_ENGINE_VNNI=0 turns it off)"
                                   : "");
  std::printf("%-6s %-5s %5s %10s %12s\n", "kernel", "bits", "n", "GMAC/s", "us/call");
  for (const auto& bs : split(bits_list)) {
    const int bits = std::stoi(bs);
    const auto m = random_matrix(rows, cols, bits, rng);
    const auto w = format::view_of(m);
    for (const auto& ns : split(n_list)) {
      const int64_t n = std::stoll(ns);
      std::vector<float> x(static_cast<size_t>(n * cols)), y(static_cast<size_t>(n * rows));
      std::normal_distribution<float> nd(0.0f, 1.0f);
      for (auto& v : x) v = nd(rng);
      for (const auto& k : split(kernels)) {
        double spc = 0.0;
        if (k == "gemv") {
          spc = time_per_call(
              [&] { packed_matmul_rows(w, x.data(), n, cols, y.data(), rows, 0, rows, isa); },
              seconds);
        } else if (k == "tile") {
          if (isa != KernelIsa::kAvx2) continue;
          spc = time_per_call(
              [&] { tiled_matmul_rows(w, x.data(), n, cols, y.data(), rows, 0, rows, isa); },
              seconds);
        } else if (k == "q8") {
          Q8Activations xq;
          spc = time_per_call(
              [&] {
                quantize_q8(x.data(), n, cols, cols, &xq);
                q8_matmul_rows(w, xq, y.data(), rows, 0, rows, isa);
              },
              seconds);
        } else {
          std::fprintf(stderr, "unknown kernel %s\n", k.c_str());
          return 2;
        }
        const double macs = static_cast<double>(rows * cols * n);
        std::printf("%-6s w%-4d %5lld %10.2f %12.1f\n", k.c_str(), bits, static_cast<long long>(n),
                    macs / spc / 1e9, spc * 1e6);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
