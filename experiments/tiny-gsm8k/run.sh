#!/usr/bin/env bash
# tiny-gsm8k: the effect of quantization and QAT, shown on a model this
# toolkit trains on a 2-core CPU. One command:
#   bash experiments/tiny-gsm8k/run.sh [OUT_DIR] [extra `qwenqat demo` flags]
# It builds qwenqat, writes a byte-level tokenizer (no merges, 261 tokens),
# trains a ~1.8M-parameter Qwen2 in full precision on the GSM8K train split
# (95% train / 5% held out), then sweeps PTQ vs QAT vs QAT+KD at 8, 4, 3 and 2
# bits with groups of 32 and 128 (and int4 g32 with int8 per-token
# activations): every point is trained, exported to .h5 and
# evaluated with the native engine on the held-out split (perplexity of the
# reference solutions, KL divergence and top-1 agreement against the
# full-precision model). Results: OUT/sweep/results.{md,csv,jsonl} and
# OUT/sweep/accuracy_vs_size.{png,svg}. Re-running continues an interrupted run.
# Needs ../shared/data/gsm8k/train.jsonl (or QWENQAT_GSM8K=path).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$ROOT/runs/tiny-gsm8k}"
shift || true
DATA="${QWENQAT_GSM8K:-$ROOT/../shared/data/gsm8k/train.jsonl}"
if [[ ! -f "$DATA" ]]; then
  echo "tiny-gsm8k: $DATA not found; set QWENQAT_GSM8K to GSM8K's train.jsonl" >&2
  exit 1
fi
bash "$ROOT/scripts/setup.sh"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$ROOT/build" -j "$(nproc)" --target qwenqat
exec "$ROOT/build/cli/qwenqat" demo --out "$OUT" --data "$DATA" --holdout 0.05 \
  --eval-limit 100 \
  --hidden 256 --intermediate 512 --layers 3 --heads 8 --kv-heads 2 \
  --base-steps 200 --base-lr 3e-3 --batch-size 8 --max-length 320 \
  --bits 8 4 3 2 --group-sizes 32 128 --methods ptq qat qat_kd --act-bits 8 \
  --qat-steps 25 --qat-lr 1e-4 --scale-lr 1e-3 "$@"
