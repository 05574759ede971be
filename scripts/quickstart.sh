#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, installs the libraries
# into build/prefix and runs the main job. Until the `ddpm` command line lands, the main
# job is examples/tensor_basics built against the installed package: it fits a linear
# model with the autograd engine and gradient-checks an expression.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-dependencies.sh
scripts/build.sh
cmake --install build --prefix build/prefix > /dev/null
cmake -S examples/tensor_basics -B build/example -DCMAKE_PREFIX_PATH="$PWD/build/prefix" > /dev/null
cmake --build build/example -j 2 > /dev/null
build/example/tensor_basics
