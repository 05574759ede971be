#!/usr/bin/env bash
# The test suite under AddressSanitizer and UndefinedBehaviorSanitizer (Debug build in
# build-sanitize/). Any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
BUILD_DIR=build-sanitize BUILD_TYPE=Debug scripts/test.sh -DDDPM_SANITIZE=ON -DDDPM_BUILD_BENCHMARKS=OFF
