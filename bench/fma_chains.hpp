#pragma once
// One worker's FMA chains on one instruction set's vectors. Included only by
// fma_chains_<arch>.cpp, each compiled with that ISA's flags (as the GEMM microkernels
// are), so the peak is measured on the vectors of the kernel in use, not the compiler's.
#include <cstdint>

#include <xsimd/xsimd.hpp>

namespace ddpm::bench {

// Ten independent chains (enough to hide the FMA latency) for `iterations` rounds; the
// sums land in sink[0 .. lanes), so the compiler cannot drop the loop. Returns the FLOPs.
template <class Arch>
__attribute__((noinline)) double fma_chains(std::int64_t iterations, float* sink) {
  using Batch = xsimd::batch<float, Arch>;
  constexpr int chains = 10;
  Batch accumulators[chains];
  for (int c = 0; c < chains; ++c) accumulators[c] = Batch(1.0f + c * 1e-3f);
  const Batch scale(0.999999f), shift(1e-7f);
  for (std::int64_t i = 0; i < iterations; ++i)
    for (int c = 0; c < chains; ++c) accumulators[c] = xsimd::fma(accumulators[c], scale, shift);
  Batch total = accumulators[0];
  for (int c = 1; c < chains; ++c) total += accumulators[c];
  total.store_unaligned(sink);
  return 2.0 * Batch::size * chains * static_cast<double>(iterations);
}

// Per-architecture entry points, each defined in its own translation unit.
double fma_chains_sse2(std::int64_t iterations, float* sink);
double fma_chains_avx2(std::int64_t iterations, float* sink);
double fma_chains_avx512(std::int64_t iterations, float* sink);

}  // namespace ddpm::bench
