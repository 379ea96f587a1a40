// vector_peak: the per-core throughput of the vector instructions the engine's
// kernels are made of, measured in thread CPU time with 12 independent
// dependency chains (so latency does not limit it): 256- and 512-bit float
// FMA and int8 products (vpmaddubsw: AVX2, 32 byte products summed in pairs;
// vpdpbusd: AVX-VNNI / AVX-512 VNNI). The kernels' G MAC/s (kernel_bench) are
// read against these ceilings: a 512-bit FMA is 16 MACs, a 256-bit vpmaddubsw
// 32, a 512-bit vpdpbusd 64. "tile mix" is vpdpbusd in the proportions of
// the int8 kernel's register tiles, with their float part: the ceiling of
// batched decode (docs/PERFORMANCE.md). Forms the CPU lacks are skipped.
//
// Usage: vector_peak [--seconds S]   (per form, default 0.5)
#include <immintrin.h>
#include <time.h>

#include <cstdio>
#include <string>

// GCC 12 flags the undefined pass-through operands inside the AVX-512
// intrinsics as uninitialized: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

constexpr int kChains = 12;
constexpr long kIters = 1 << 20;  // per timing round

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Calls round() (kIters x kChains instructions) until `seconds` have passed;
// returns G instructions per second.
double rate(void (*round)(), double seconds) {
  round();
  long rounds = 0;
  const double t0 = thread_cpu_seconds();
  double t = t0;
  while (t - t0 < seconds) {
    round();
    ++rounds;
    t = thread_cpu_seconds();
  }
  return static_cast<double>(rounds) * kIters * kChains / (t - t0) / 1e9;
}

volatile float g_sink;

__attribute__((target("avx2,fma"))) void fma256_round() {
  __m256 a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(0.001f);
  for (long n = 0; n < kIters; ++n)
    for (int i = 0; i < kChains; ++i) a[i] = _mm256_fmadd_ps(a[i], x, y);
  float s = 0;
  for (int i = 0; i < kChains; ++i) s += _mm256_cvtss_f32(a[i]);
  g_sink = s;
}

double fma256(double seconds) { return rate(fma256_round, seconds); }

__attribute__((target("avx512f"))) void fma512_round() {
  __m512 a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(0.001f);
  for (long n = 0; n < kIters; ++n)
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_fmadd_ps(a[i], x, y);
  float s = 0;
  for (int i = 0; i < kChains; ++i) s += _mm512_cvtss_f32(a[i]);
  g_sink = s;
}

double fma512(double seconds) { return rate(fma512_round, seconds); }

__attribute__((target("avx2,avxvnni"))) void dpbusd256_round() {
  __m256i a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm256_set1_epi32(i);
  const __m256i u = _mm256_set1_epi8(3), q = _mm256_set1_epi8(-5);
  for (long n = 0; n < kIters; ++n)
    for (int i = 0; i < kChains; ++i) a[i] = _mm256_dpbusd_avx_epi32(a[i], u, q);
  int s = 0;
  for (int i = 0; i < kChains; ++i) s += _mm256_extract_epi32(a[i], 0);
  g_sink = static_cast<float>(s);
}

double dpbusd256(double seconds) { return rate(dpbusd256_round, seconds); }

// The AVX2 int8 product without VNNI (the engine's avx2_q8 kernels): the
// chain feeds each vpmaddubsw's result back as its unsigned operand.
__attribute__((target("avx2"))) void maddubs256_round() {
  __m256i a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm256_set1_epi8(static_cast<char>(i));
  const __m256i q = _mm256_set1_epi8(-5);
  for (long n = 0; n < kIters; ++n)
    for (int i = 0; i < kChains; ++i) a[i] = _mm256_maddubs_epi16(a[i], q);
  int s = 0;
  for (int i = 0; i < kChains; ++i) s += _mm256_extract_epi32(a[i], 0);
  g_sink = static_cast<float>(s);
}

double maddubs256(double seconds) { return rate(maddubs256_round, seconds); }

__attribute__((target("avx512f,avx512vnni"))) void dpbusd512_round() {
  __m512i a[kChains];
  for (int i = 0; i < kChains; ++i) a[i] = _mm512_set1_epi32(i);
  const __m512i u = _mm512_set1_epi8(3), q = _mm512_set1_epi8(-5);
  for (long n = 0; n < kIters; ++n)
    for (int i = 0; i < kChains; ++i) a[i] = _mm512_dpbusd_epi32(a[i], u, q);
  int s = 0;
  for (int i = 0; i < kChains; ++i) s += _mm_cvtsi128_si32(_mm512_castsi512_si128(a[i]));
  g_sink = static_cast<float>(s);
}

double dpbusd512(double seconds) { return rate(dpbusd512_round, seconds); }

// The instruction mix of the int8 kernel's register tiles (avx512_q8.cpp,
// il_tile): per 16-block chunk and (row, sequence) pair, 8 vpdpbusd into an
// int32 block-sum vector, then its float part, acc += float(isum) * (s * d)
// (vcvtdq2ps, vmulps, vfmadd). Counted in vpdpbusd, so the row reads against
// the pure vpdpbusd row above: the ceiling the tiles' float part leaves
// (Zen 5, eight runs: 5.0-5.4 G/s, 0.76-0.78 of plain vpdpbusd's 7.0-7.1 in
// its fast state; the float operations share the vector pipes with it).
// No loads: the tiles' own loads, unpacking and epilogue only lower it.
__attribute__((target("avx512f,avx512vnni"))) void tile_mix512_round() {
  constexpr int kPairs = 8;  // (row, sequence) pairs: 8 acc + 8 d + temporaries
  __m512 acc[kPairs], d[kPairs];
  for (int i = 0; i < kPairs; ++i) {
    acc[i] = _mm512_setzero_ps();
    d[i] = _mm512_set1_ps(0.25f + static_cast<float>(i));
  }
  __m512i u = _mm512_set1_epi8(3), q = _mm512_set1_epi8(-5);
  __m512 s = _mm512_set1_ps(0.5f);
  for (long n = 0; n < kIters * kChains / (8 * kPairs); ++n) {
    // Opaque to the compiler: no constant folding of the products, no hoisting of s * d.
    asm volatile("" : "+v"(u), "+v"(q), "+v"(s));
    for (int i = 0; i < kPairs; ++i) {
      __m512i isum = _mm512_set1_epi32(i);
      for (int t = 0; t < 8; ++t) isum = _mm512_dpbusd_epi32(isum, u, q);
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(s, d[i]), acc[i]);
    }
  }
  float sum = 0;
  for (int i = 0; i < kPairs; ++i) sum += _mm512_cvtss_f32(acc[i]);
  g_sink = sum;
}

double tile_mix512(double seconds) { return rate(tile_mix512_round, seconds); }

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  for (int i = 1; i < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[i + 1]);
    } else {
      std::fprintf(stderr, "vector_peak: unknown option %s (usage: vector_peak [--seconds S])\n",
                   a.c_str());
      return 2;
    }
  }
  std::printf("vector_peak: G instructions/s per core (thread CPU time), %d chains\n", kChains);
  std::printf("%-16s %10s %14s\n", "instruction", "G instr/s", "G MAC/s");
  auto row = [](const char* name, double g, int macs) {
    std::printf("%-16s %10.2f %14.1f\n", name, g, g * macs);
  };
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    row("vfmadd ymm", fma256(seconds), 8);
  if (__builtin_cpu_supports("avx2")) row("vpmaddubsw ymm", maddubs256(seconds), 32);
  if (__builtin_cpu_supports("avx512f")) row("vfmadd zmm", fma512(seconds), 16);
  if (__builtin_cpu_supports("avxvnni")) row("vpdpbusd ymm", dpbusd256(seconds), 32);
  if (__builtin_cpu_supports("avx512vnni")) {
    row("vpdpbusd zmm", dpbusd512(seconds), 64);
    row("tile mix zmm", tile_mix512(seconds), 64);
  }
  return 0;
}
