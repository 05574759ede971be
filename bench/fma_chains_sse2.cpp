#include "bench/fma_chains.hpp"

namespace ddpm::bench {
double fma_chains_sse2(std::int64_t iterations, float* sink) { return fma_chains<xsimd::sse2>(iterations, sink); }
}  // namespace ddpm::bench
