#include "bench/fma_chains.hpp"

namespace ddpm::bench {
double fma_chains_avx2(std::int64_t iterations, float* sink) { return fma_chains<xsimd::fma3<xsimd::avx2>>(iterations, sink); }
}  // namespace ddpm::bench
