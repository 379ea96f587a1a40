#!/usr/bin/env bash
# Installs dependencies, builds qwenqat and runs the main job on the embedded
# default (see README). Extra arguments go to `qwenqat demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target qwenqat
./build/cli/qwenqat demo "$@"
