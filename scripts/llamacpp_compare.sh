#!/usr/bin/env bash
# Side-by-side speed of qwenqat's engine and llama.cpp on the same weights:
# random weights of the real 1.5B shapes, round-to-nearest w4g32 and w8g32
# (every linear layer, embed_tokens and lm_head included), exported once as
# .h5 (qwenqat) and once as GGUF Q4_0 / Q8_0 (llama.cpp) from the same
# checkpoint, so both engines read the same bits.
#
# llama.cpp is Debian's own build (package llama.cpp-tools from sid, with
# ggml's per-CPU backends), fetched as .deb files from Debian's archive with
# their SHA256 checked against the archive's index and unpacked under the
# cache directory together with sid's C and C++ runtime; the tools run with
# that runtime's dynamic loader, so nothing is installed on the system. Each
# of ggml's CPU backends this CPU can run is measured against the qwenqat
# kernels of the same ISA level (QWENQAT_ENGINE_* switches):
#   haswell (AVX2)                 <-> QWENQAT_ENGINE_AVX512=0 QWENQAT_ENGINE_VNNI=0
#   icelake (AVX-512 VNNI)         <-> QWENQAT_ENGINE_AMX=0
#   sapphirerapids (AVX-512 + AMX) <-> all kernels
#   zen4 (AMD, AVX-512 VNNI + BF16) <-> all kernels (no AMX there)
# Tests: prefill of 128 tokens, decode of 64 tokens after a 128-token prompt
# (llama-bench -p 128 / -n 64 -d 128), and batch 16 (16 prompt + 16 decoded
# tokens each: llama-batched-bench -npl 16 against qwenqat bench --batch 16),
# and with LONG=1 (the default; LONG=0 skips it, ~6 min) a long context:
# prefill of 2000 tokens (llama-bench -p 2000) and decode of 32 tokens after
# them (-n 32 -d 2000), where attention is a third of a step.
# Both use 2 threads (override with THREADS), an f16 KV cache and int8
# activations (llama.cpp's Q8_0 activations; qwenqat --act-quant q8).
#
# Needs a built tree (build/), ../shared's 1.5B config, network access to
# deb.debian.org and ~12 GB of disk in the cache directory. Not part of CI.
# Usage: scripts/llamacpp_compare.sh [CACHE_DIR]
#   (default ${XDG_CACHE_HOME:-$HOME/.cache}/qwenqat/llamacpp-compare)
# Output: CACHE_DIR/results.csv and a Markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
Q=$ROOT_DIR/build/cli/qwenqat
CONFIG=$ROOT_DIR/../shared/models/deepseek-r1-distill-qwen-1.5b
CACHE=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/qwenqat/llamacpp-compare}
THREADS=${THREADS:-2}
LONG=${LONG:-1}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
[[ -x "$Q" ]] || { echo "llamacpp_compare: build first (scripts/test.sh)" >&2; exit 1; }
[[ -f "$CONFIG/config.json" ]] || { echo "llamacpp_compare: $CONFIG/config.json not found" >&2; exit 1; }
mkdir -p "$CACHE/debs" "$CACHE/root"
cd "$CACHE"

# 1. llama.cpp from Debian sid: the packages and their runtime dependencies.
PKGS=(llama.cpp-tools llama.cpp-tools-extra libllama0 libggml0 libc6 libstdc++6 libgcc-s1
  libgomp1 libssl3t64 libzstd1 zlib1g)
if [[ ! -x root/usr/bin/llama-bench ]]; then
  echo "== fetching llama.cpp from $MIRROR (sid)"
  curl -fsS -m 300 -o Packages.xz "$MIRROR/dists/sid/main/binary-amd64/Packages.xz"
  for p in "${PKGS[@]}"; do
    file="" sha=""
    read -r file sha < <(xzcat Packages.xz | awk -v P="$p" '
      $0 == "Package: " P { on = 1 } on && /^Filename: / { f = $2 } on && /^SHA256: / { s = $2 }
      on && /^$/ { print f, s; exit }') || true
    [[ -n "$file" ]] || { echo "llamacpp_compare: $p not in sid's index" >&2; exit 1; }
    deb=debs/$(basename "$file")
    [[ -f "$deb" ]] || curl -fsS -m 600 -o "$deb" "$MIRROR/$file"
    echo "$sha  $deb" | sha256sum -c --quiet ||
      { echo "llamacpp_compare: $deb does not match sid's SHA256" >&2; rm -f "$deb"; exit 1; }
    dpkg-deb -x "$deb" root
  done
fi
LIB=$CACHE/root/usr/lib/x86_64-linux-gnu
BACKENDS=$LIB/ggml/backends0
llama() {  # llama TOOL ARGS...: one of llama.cpp's tools with sid's runtime
  local tool=$1
  shift
  "$LIB/ld-linux-x86-64.so.2" --library-path "$LIB:$LIB/llama" "$CACHE/root/usr/bin/$tool" "$@"
}
llama llama-bench --version 2>&1 | grep -E '^(version|built)' || true

# 2. The same weights for both engines.
if [[ ! -f rand-1.5b/model.safetensors ]]; then
  "$Q" init --config "$CONFIG" --out rand-1.5b --dtype bf16 --seed 1
fi
for quant in w4g32 w8g32; do
  [[ -f $quant.h5 && -f $quant.gguf ]] && continue
  echo "{\"weight\": \"$quant\", \"quantize_embed_tokens\": true, \"quantize_lm_head\": true}" \
    >"qconfig-$quant.json"
  "$Q" train --model rand-1.5b --out "run-$quant" --qconfig "qconfig-$quant.json" --steps 0
  "$Q" export --model "run-$quant/checkpoint-0" --out "$quant.h5" --gguf "$quant.gguf"
  rm -rf "run-$quant"
done

# 3. Measure: one ISA level at a time, llama.cpp then qwenqat, back to back.
LEVELS=()
grep -qw avx2 /proc/cpuinfo && LEVELS+=("haswell|QWENQAT_ENGINE_AVX512=0 QWENQAT_ENGINE_VNNI=0")
grep -qw avx512_vnni /proc/cpuinfo && grep -qw avx512vbmi /proc/cpuinfo &&
  LEVELS+=("icelake|QWENQAT_ENGINE_AMX=0")
grep -qw amx_int8 /proc/cpuinfo && LEVELS+=("sapphirerapids|QWENQAT_ENGINE_AMX=1")
# AMD Zen 4 / Zen 5: ggml's own choice there (AVX-512 VNNI + BF16), against all kernels.
[[ -f $BACKENDS/libggml-cpu-zen4.so ]] && grep -qw avx512_bf16 /proc/cpuinfo &&
  grep -qw AuthenticAMD /proc/cpuinfo && LEVELS+=("zen4|QWENQAT_ENGINE_AMX=1")
avg_ts() { sed -n 's/.*"avg_ts": *\([0-9.e+-]*\).*/\1/p'; }  # from llama-bench -o jsonl
bench() {  # bench ENV MODEL ARGS...: qwenqat bench --json with the ENV switches
  local envs=$1 model=$2
  shift 2
  env $envs "$Q" bench --model "$model" --threads "$THREADS" --act-quant q8 --kv-cache f16 \
    --bandwidth-mb 0 --json "$@" 2>/dev/null
}
field() { grep -m1 "\"$1\"" | sed 's/.*: *//; s/,$//'; }  # a top-level number of bench --json (keys sorted: before "runs")
echo "level,weights,test,llamacpp_tok_s,qwenqat_tok_s,ratio" >results.csv
uptime
for level in "${LEVELS[@]}"; do
  backend=${level%%|*}
  envs=${level#*|}
  export GGML_BACKEND_PATH=$BACKENDS/libggml-cpu-$backend.so
  for quant in w4g32 w8g32; do
    echo "== $backend / $envs, $quant"
    lp=$(llama llama-bench -m $quant.gguf -t "$THREADS" -p 128 -n 0 -r 3 -o jsonl 2>/dev/null | avg_ts)
    ld=$(llama llama-bench -m $quant.gguf -t "$THREADS" -p 0 -n 64 -d 128 -r 3 -o jsonl 2>/dev/null |
      avg_ts)
    # llama-batched-bench's table: | PP | TG | B | N_KV | T_PP | S_PP | T_TG | S_TG | ...
    lb=$(llama llama-batched-bench -m $quant.gguf -t "$THREADS" -c 1024 -npp 16 -ntg 16 -npl 16 2>/dev/null |
      awk -F'|' '$4 + 0 == 16 { gsub(/ /, "", $9); print $9 }')
    one=$(bench "$envs" $quant.h5 --prompt-tokens 128 --gen-tokens 64)
    qp=$(echo "$one" | field prefill_tokens_per_s)
    qd=$(echo "$one" | field decode_tokens_per_s)
    qb=$(bench "$envs" $quant.h5 --prompt-tokens 16 --gen-tokens 16 --batch 16 |
      field decode_tokens_per_s)
    rows=("prefill 128|$lp|$qp" "decode b1|$ld|$qd" "decode b16|$lb|$qb")
    if [[ $LONG == 1 ]]; then
      llp=$(llama llama-bench -m $quant.gguf -t "$THREADS" -p 2000 -n 0 -r 1 -o jsonl 2>/dev/null | avg_ts)
      lld=$(llama llama-bench -m $quant.gguf -t "$THREADS" -p 0 -n 32 -d 2000 -r 2 -o jsonl 2>/dev/null |
        avg_ts)
      long=$(bench "$envs" $quant.h5 --prompt-tokens 2000 --gen-tokens 32)
      rows+=("prefill 2000|$llp|$(echo "$long" | field prefill_tokens_per_s)")
      rows+=("decode b1 @2000|$lld|$(echo "$long" | field decode_tokens_per_s)")
    fi
    for row in "${rows[@]}"; do
      IFS='|' read -r test l q <<<"$row"
      r=$(awk -v l="$l" -v q="$q" 'BEGIN { if (l > 0) printf "%.2f", q / l; else print "n/a" }')
      echo "$backend,$quant,$test,$l,$q,$r" | tee -a results.csv
    done
  done
done
uptime
echo
echo "| llama.cpp backend | weights | test | llama.cpp tok/s | qwenqat tok/s | qwenqat / llama.cpp |"
echo "|---|---|---|---:|---:|---:|"
tail -n +2 results.csv | awk -F, '{ printf "| %s | %s | %s | %.1f | %.1f | %s |\n", $1, $2, $3, $4, $5, $6 }'
echo
echo "results: $CACHE/results.csv"
