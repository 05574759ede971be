#!/usr/bin/env bash
# Installs the Debian packages that ddpm.cpp builds and tests with, skipping those already present.
# Run as root on Debian 12. Nothing is downloaded from anywhere but Debian's package registry.
set -euo pipefail

packages=(
  build-essential cmake ccache pkg-config
  libxsimd-dev libtbb-dev doctest-dev libbenchmark-dev
  zlib1g-dev libpng-dev nlohmann-json3-dev libcli11-dev
  libeigen3-dev  # the symmetric eigensolver of FID's matrix square root
  dataset-fashion-mnist
  clang libclang-rt-14-dev  # the test suite compiles and briefly runs the libFuzzer targets
  libopenmpi-dev openmpi-bin  # data-parallel training, sampling and evaluation (mpirun)
)
if [[ "${DDPM_WITH_PYTORCH:-0}" == 1 ]]; then
  # Only for the side-by-side benchmarks and fixture scripts, never for the build or the tests.
  packages+=(python3-torch python3-numpy python3-scipy python3-pil libopenblas0-pthread)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-dependencies: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-dependencies: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "install-dependencies: must run as root to install packages" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
