#include "tensor/convolution/winograd.hpp"

#include <xsimd/xsimd.hpp>

#include "tensor/convolution/winograd_body.hpp"

namespace ddpm::convolution_detail {

bool winograd_suits(const Geometry& g) {
  return g.kernel_height == 3 && g.kernel_width == 3 && g.stride == 1 && g.dilation == 1 &&
         g.in_channels >= winograd::minimum_channels && g.out_channels >= winograd::minimum_channels;
}

// The transforms run on the compiler's vectors, the products on the microkernel in use;
// the layout fits both (winograd_body.hpp).
template <class T>
void correlate_winograd(const Geometry& g, const T* input, const T* weight, const T* bias, T* out) {
  winograd::correlate<xsimd::batch<T>>(gemm_detail::active_microkernel<T>(), input, g.batch, g.in_channels, g.height,
                                       g.width, g.padding, g.out_channels, weight, bias, out);
}

template <class T>
void weight_gradient_winograd(const Geometry& g, const T* input, const T* output_gradient, T* weight_gradient) {
  winograd::weight_gradient<xsimd::batch<T>>(gemm_detail::active_microkernel<T>(), input, g.batch, g.in_channels,
                                             g.height, g.width, g.padding, g.out_channels, output_gradient,
                                             weight_gradient);
}

#define DDPM_INSTANTIATE_WINOGRAD(T)                                                                                 \
  template void correlate_winograd<T>(const Geometry&, const T*, const T*, const T*, T*); \
  template void weight_gradient_winograd<T>(const Geometry&, const T*, const T*, T*);
DDPM_INSTANTIATE_WINOGRAD(float)
DDPM_INSTANTIATE_WINOGRAD(double)
#undef DDPM_INSTANTIATE_WINOGRAD

}  // namespace ddpm::convolution_detail
