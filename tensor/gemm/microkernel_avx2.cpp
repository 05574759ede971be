// AVX2 + FMA kernel: 6 x 16 floats (6 x 8 doubles): 12 accumulators, 2 B vectors and one
// broadcast of the 16 ymm registers. Compiled with -mavx2 -mfma.
#include "tensor/gemm/microkernel_body.hpp"

namespace ddpm::gemm_detail {
using Avx2 = xsimd::fma3<xsimd::avx2>;
template <> Microkernel<float> avx2_microkernel<float>() { return make_microkernel<float, Avx2, 6>("avx2"); }
template <> Microkernel<double> avx2_microkernel<double>() { return make_microkernel<double, Avx2, 6>("avx2"); }
}  // namespace ddpm::gemm_detail
