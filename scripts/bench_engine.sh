#!/usr/bin/env bash
# The engine's benchmark set of docs/PERFORMANCE.md ("Idle machine"): kernel
# rates, then `qwenqat bench` on random weights of the real 1.5B shapes for
# w4g32 and w8g32, batch 1 and 16, float and int8 activations, one after
# another; on a CPU with AVX-VNNI the int8 runs are repeated without it
# (QWENQAT_ENGINE_VNNI=0). Run it on an idle machine from a built tree (build/).
# Usage: scripts/bench_engine.sh [CONFIG.json]   (default: ../shared's 1.5B config)
set -euo pipefail
cd "$(dirname "$0")/.."
Q=build/cli/qwenqat
C="${1:-../shared/models/deepseek-r1-distill-qwen-1.5b/config.json}"
[[ -x "$Q" && -x build/benchmarks/kernel_bench ]] || { echo "bench_engine: build first (scripts/test.sh)" >&2; exit 1; }
[[ -f "$C" ]] || { echo "bench_engine: $C not found; pass a config.json" >&2; exit 1; }
uptime
VNNI=(1)
grep -qw avx_vnni /proc/cpuinfo && VNNI=(1 0)
for v in "${VNNI[@]}"; do
  K=gemv,tile,q8
  [[ $v == 0 ]] && K=q8  # only the int8 kernel uses AVX-VNNI
  QWENQAT_ENGINE_VNNI=$v build/benchmarks/kernel_bench --kernels $K
  # DRAM-streamed weights (the lm_head shape)
  QWENQAT_ENGINE_VNNI=$v build/benchmarks/kernel_bench --rows 151936 --cols 1536 --n 1 --kernels $K
done
for quant in w4g32 w8g32; do
  for aq in none q8 q8-novnni; do
    v=1 a=$aq
    if [[ $aq == q8-novnni ]]; then
      [[ ${#VNNI[@]} == 2 ]] || continue
      v=0 a=q8
    fi
    echo "== $quant batch 1, --act-quant $a, QWENQAT_ENGINE_VNNI=$v"
    QWENQAT_ENGINE_VNNI=$v "$Q" bench --random-config "$C" --random-quant "$quant" \
      --prompt-tokens 128 --gen-tokens 64 --batch 1 --threads 2 --act-quant "$a"
    echo "== $quant batch 16, --act-quant $a, QWENQAT_ENGINE_VNNI=$v"
    QWENQAT_ENGINE_VNNI=$v "$Q" bench --random-config "$C" --random-quant "$quant" \
      --prompt-tokens 16 --gen-tokens 16 --batch 16 --threads 2 --act-quant "$a" --bandwidth-mb 0
  done
done
uptime
