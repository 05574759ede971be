// Baseline x86-64 kernel: 6 x 8 floats (6 x 4 doubles). SSE2 has no FMA; xsimd::fma
// falls back to multiply-add.
#include "tensor/gemm/microkernel_body.hpp"

namespace ddpm::gemm_detail {
template <> Microkernel<float> sse2_microkernel<float>() { return make_microkernel<float, xsimd::sse2, 6>("sse2"); }
template <> Microkernel<double> sse2_microkernel<double>() { return make_microkernel<double, xsimd::sse2, 6>("sse2"); }
}  // namespace ddpm::gemm_detail
