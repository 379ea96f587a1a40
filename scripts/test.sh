#!/usr/bin/env bash
# Installs dependencies, builds qwenqat and runs the whole test suite (ctest).
# Usage: scripts/test.sh [extra ctest args]   (QWENQAT_SANITIZE=ON for ASan+UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${QWENQAT_BUILD_DIR:-build}
SAN=${QWENQAT_SANITIZE:-OFF}
[[ "$SAN" == ON && "$BUILD" == build ]] && BUILD=build-asan
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DQWENQAT_SANITIZE="$SAN" >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
EXCLUDE=()
if ! nvidia-smi >/dev/null 2>&1; then
  echo "test: no GPU found; CUDA tests (*_CUDA) are filtered out"
  EXCLUDE=(-E "_CUDA")
fi
cd "$BUILD"
ctest -j "$(nproc)" --output-on-failure "${EXCLUDE[@]}" "$@"
