#!/usr/bin/env bash
# The engine's benchmark set of docs/PERFORMANCE.md: kernel rates, then
# `qwenqat bench` on random weights of the real 1.5B shapes for w4g32 and
# w8g32, batch 1 and 16, float and int8 activations (each pair within the
# rounds of one process). Each
# run is repeated with the CPU's newest kernels turned off, so one run of the
# script gives the ratios: on a CPU with AMX with QWENQAT_ENGINE_AMX=0 (the
# AVX-512 int8 kernels) and QWENQAT_ENGINE_AVX512=0, on a CPU with AVX-512 with
# QWENQAT_ENGINE_AVX512=0 (the AVX2 / AVX-VNNI kernels), else on a CPU with
# AVX-VNNI with QWENQAT_ENGINE_VNNI=0. Run it on an idle machine from a built tree (build/).
# Usage: scripts/bench_engine.sh [CONFIG.json]   (default: ../shared's 1.5B config)
set -euo pipefail
cd "$(dirname "$0")/.."
Q=build/cli/qwenqat
C="${1:-../shared/models/deepseek-r1-distill-qwen-1.5b/config.json}"
[[ -x "$Q" && -x build/benchmarks/kernel_bench ]] || { echo "bench_engine: build first (scripts/test.sh)" >&2; exit 1; }
[[ -f "$C" ]] || { echo "bench_engine: $C not found; pass a config.json" >&2; exit 1; }
uptime
# Variants: environment settings, the newest kernels first.
VARIANTS=("QWENQAT_ENGINE_AVX512=1")
if grep -qw amx_int8 /proc/cpuinfo; then
  VARIANTS+=("QWENQAT_ENGINE_AMX=0")
fi
if grep -qw avx512f /proc/cpuinfo; then
  VARIANTS+=("QWENQAT_ENGINE_AVX512=0")
elif grep -qw avx_vnni /proc/cpuinfo; then
  VARIANTS+=("QWENQAT_ENGINE_VNNI=0")
fi
for v in "${VARIANTS[@]}"; do
  echo "== kernel_bench, $v"
  env "$v" build/benchmarks/kernel_bench --kernels gemv,tile,q8
  # DRAM-streamed weights (the lm_head shape)
  env "$v" build/benchmarks/kernel_bench --rows 151936 --cols 1536 --n 1 --kernels gemv,q8
done
for quant in w4g32 w8g32; do
  for v in "${VARIANTS[@]}"; do
    # float and int8 activations alternating in two rounds of one process
    echo "== $quant batch 1, $v"
    env "$v" "$Q" bench --random-config "$C" --random-quant "$quant" --prompt-tokens 128 \
      --gen-tokens 64 --batch 1 --threads 2 --act-quant none,q8 --repetitions 2
    # batch 16 against batch 1 of the same sizes and activations
    echo "== $quant batch 1 and 16, $v"
    env "$v" "$Q" bench --random-config "$C" --random-quant "$quant" --prompt-tokens 16 \
      --gen-tokens 16 --batch 1,16 --threads 2 --act-quant none,q8 --repetitions 2 --bandwidth-mb 0
  done
done
uptime
