// AVX-512F kernel: 12 x 32 floats (12 x 16 doubles): 24 accumulators, 2 B vectors and one
// broadcast of the 32 zmm registers. Compiled with -mavx512f; used only where the CPU
// reports AVX-512F.
#include "tensor/gemm/microkernel_body.hpp"

namespace ddpm::gemm_detail {
template <> Microkernel<float> avx512_microkernel<float>() { return make_microkernel<float, xsimd::avx512f, 12>("avx512"); }
template <> Microkernel<double> avx512_microkernel<double>() { return make_microkernel<double, xsimd::avx512f, 12>("avx512"); }
}  // namespace ddpm::gemm_detail
