#include "bench/fma_chains.hpp"

namespace ddpm::bench {
double fma_chains_avx512(std::int64_t iterations, float* sink) { return fma_chains<xsimd::avx512f>(iterations, sink); }
}  // namespace ddpm::bench
