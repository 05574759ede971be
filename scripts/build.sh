#!/usr/bin/env bash
# Configures and builds ddpm.cpp (Release, -march=native, ccache) into ${BUILD_DIR:-build}.
# Extra arguments go to cmake's configure step, e.g. -DDDPM_NATIVE=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "$@"
cmake --build "$build_dir" -j "${JOBS:-2}"
