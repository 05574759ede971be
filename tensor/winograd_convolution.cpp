#include "tensor/winograd_convolution.hpp"

#include <xsimd/xsimd.hpp>

#include "tensor/winograd_convolution_body.hpp"

namespace ddpm::convolution_detail {

bool winograd_suits(std::int64_t kernel_height, std::int64_t kernel_width, std::int64_t stride, std::int64_t dilation,
                    std::int64_t inputs, std::int64_t outputs) {
  return kernel_height == 3 && kernel_width == 3 && stride == 1 && dilation == 1 &&
         inputs >= winograd::minimum_channels && outputs >= winograd::minimum_channels;
}

// The transforms run on the compiler's vectors, the products on the microkernel in use;
// the layout fits both (winograd_convolution_body.hpp).
template <class T>
void correlate_winograd(const T* input, std::int64_t batch, std::int64_t channels, std::int64_t height,
                        std::int64_t width, std::int64_t padding, std::int64_t outputs, const T* weight, const T* bias,
                        T* out) {
  winograd::correlate<xsimd::batch<T>>(gemm_detail::active_microkernel<T>(), input, batch, channels, height, width,
                                       padding, outputs, weight, bias, out);
}

template <class T>
void weight_gradient_winograd(const T* input, std::int64_t batch, std::int64_t channels, std::int64_t height,
                              std::int64_t width, std::int64_t padding, std::int64_t outputs,
                              const T* output_gradient, T* weight_gradient) {
  winograd::weight_gradient<xsimd::batch<T>>(gemm_detail::active_microkernel<T>(), input, batch, channels, height,
                                             width, padding, outputs, output_gradient, weight_gradient);
}

#define DDPM_INSTANTIATE_WINOGRAD(T)                                                                                 \
  template void correlate_winograd<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, \
                                      std::int64_t, const T*, const T*, T*);                                          \
  template void weight_gradient_winograd<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,         \
                                            std::int64_t, std::int64_t, const T*, T*);
DDPM_INSTANTIATE_WINOGRAD(float)
DDPM_INSTANTIATE_WINOGRAD(double)
#undef DDPM_INSTANTIATE_WINOGRAD

}  // namespace ddpm::convolution_detail
