#pragma once
// The machine's FMA peak, measured in the process that reports against it. This machine's
// clock drifts by 10% within the hour, so a peak written down on another day misreads every
// fraction (a constant 73.1 GFLOP/s had a 93%-of-peak GEMM at 100%).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/parallel.hpp"

namespace ddpm::bench {

// One pass of ten independent FMA chains per worker (enough to hide the FMA latency),
// `threads` workers side by side under the current thread limit. Returns the FLOPs done.
// The chains' sums land in `sink`, so the compiler cannot drop the loop.
inline double run_fma_chains(int threads, std::int64_t iterations, std::vector<float>& sink) {
  using Batch = xsimd::batch<float>;
  constexpr int chains = 10;
  sink.resize(static_cast<std::size_t>(threads) * 64);
  parallel_for(threads, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = begin; t < end; ++t) {
      Batch accumulators[chains];
      for (int c = 0; c < chains; ++c) accumulators[c] = Batch(1.0f + c * 1e-3f);
      const Batch scale(0.999999f), shift(1e-7f);
      for (std::int64_t i = 0; i < iterations; ++i)
        for (int c = 0; c < chains; ++c) accumulators[c] = xsimd::fma(accumulators[c], scale, shift);
      Batch total = accumulators[0];
      for (int c = 1; c < chains; ++c) total += accumulators[c];
      total.store_unaligned(sink.data() + t * 64);
    }
  });
  return 2.0 * Batch::size * chains * static_cast<double>(iterations) * threads;
}

// GFLOP/s on `threads` workers (the caller's thread limit must allow them): the best of
// five passes of about 4 ms, measured once per thread count and process.
inline double measured_fma_peak(int threads) {
  static std::mutex mutex;
  static std::map<int, double> measured;
  std::lock_guard lock(mutex);
  const auto found = measured.find(threads);
  if (found != measured.end()) return found->second;
  std::vector<float> sink;
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    const double flops = run_fma_chains(threads, std::int64_t{1} << 20, sink);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, flops / seconds / 1e9);
  }
  return measured[threads] = best;
}

}  // namespace ddpm::bench
