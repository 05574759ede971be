#pragma once
// The FMA peak of the GEMM microkernel in use, measured in the process that reports
// against it. This machine's clock drifts by 10% within the hour, so a peak written down on
// another day misreads every fraction (a constant 73.1 GFLOP/s had a 93%-of-peak GEMM at
// 100%); and a peak taken from the compiler's vectors misreads a forced kernel or a
// portable build (SSE2 vectors against an AVX2 microkernel: half the real peak).
#include <cstdint>
#include <string>
#include <vector>

namespace ddpm::bench {

// The instruction set the peak is measured on: the active GEMM microkernel's
// (ddpm::active_gemm_kernel()), and the floats in one of its vectors.
struct FmaIsa {
  std::string kernel;
  int float_lanes = 0;
};
FmaIsa fma_isa_in_use();

// One pass of FMA chains per worker, `threads` workers side by side under the current
// thread limit, on the active kernel's vectors. Returns the FLOPs done.
double run_fma_chains(int threads, std::int64_t iterations, std::vector<float>& sink);

// GFLOP/s on `threads` workers (the caller's thread limit must allow them): the best of
// five passes of about 4 ms, measured once per thread count, kernel and process.
double measured_fma_peak(int threads);

}  // namespace ddpm::bench
