#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each on a
# copy of its seed corpus for FUZZ_SECONDS (default 600). A crash leaves its input as
# crash-* in build-fuzz/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-dependencies.sh
command -v clang++ > /dev/null || apt-get install -y -q clang
CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDDPM_FUZZ=ON \
  -DDDPM_BUILD_TESTS=OFF -DDDPM_BUILD_BENCHMARKS=OFF > /dev/null
cmake --build build-fuzz -j "${JOBS:-2}" --target fuzz_safetensors fuzz_idx fuzz_png fuzz_checkpoint_metadata
seconds=${FUZZ_SECONDS:-600}
for target in ${FUZZ_TARGETS:-safetensors idx png checkpoint_metadata}; do
  corpus=build-fuzz/corpus-$target
  mkdir -p "$corpus" && cp -n tests/fuzz/corpus/$target/* "$corpus"/ 2>/dev/null || true
  echo "== fuzz_$target for $seconds s"
  (cd build-fuzz && ./tests/fuzz/fuzz_$target -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
     -print_final_stats=1 "corpus-$target" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==.*ERROR|SUMMARY)" || true)
  if ls build-fuzz/crash-* build-fuzz/oom-* build-fuzz/leak-* build-fuzz/timeout-* 2> /dev/null; then
    echo "fuzz_$target found a problem (input saved above)"
    exit 1
  fi
done
echo "fuzzing finished without findings"
