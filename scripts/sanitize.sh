#!/usr/bin/env bash
# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer (in build-sanitize/),
# every GEMM microkernel the CPU has forced in turn (ctest's per-kernel entries). Any
# report fails the run. Extra arguments go to cmake, e.g. -DDDPM_NATIVE=OFF.
#
# -O1, not -O0: at -O0 GCC cannot compile xsimd's AVX-512BW select under -march=native on
# an AVX-512 machine (an intrinsic that needs a constant argument gets a variable).
set -euo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
BUILD_DIR=build-sanitize BUILD_TYPE=Debug scripts/test.sh -DDDPM_SANITIZE=ON -DDDPM_BUILD_BENCHMARKS=OFF \
  "-DCMAKE_CXX_FLAGS_DEBUG=-g -O1" "$@"
