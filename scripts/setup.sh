#!/usr/bin/env bash
# Installs every build and test dependency of qwenqat from Debian 12 packages.
# This is the project's only set-up step; it is idempotent and safe to re-run.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev            # LibTorch (models/, qat/, export/ writers)
  libopenblas0-openmp     # LibTorch's CPU matmuls: Debian's default netlib BLAS is ~20x slower
  libeigen3-dev           # float parts of the inference engine
  libcli11-dev            # command line
  libhdf5-dev hdf5-tools  # export format (+ h5dump/h5ls)
  nlohmann-json3-dev      # config.json, tokenizer.json, safetensors headers
  libyaml-cpp-dev         # YAML sweep files
  libpcre2-dev            # tokenizer pre-tokenizer regex
  libutf8proc-dev         # NFC normalization
  libgtest-dev googletest # tests
  gnuplot-nox             # sweep plots
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
