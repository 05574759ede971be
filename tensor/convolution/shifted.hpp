#pragma once
// Convolutions whose input-plane operand is read where it lies. With the padding in
// memory, tap (c, kh, kw) of output pixel (oy, ox) is planes[pixel offset + tap offset],
// pixel offset = s·oy·W + s·ox and tap offset = c·plane + kh·d·W + kw·d. So im2col's
// matrix is the planes themselves, read at the sum of two offsets, and the microkernel's
// gathered form (microkernel.hpp) reads it there: the large operand is never packed.
//
// One of the convolution algorithms that tensor/convolution.cpp chooses from.
#include <cstdint>

#include "tensor/convolution/padding.hpp"

namespace ddpm::convolution_detail {

// [batch, channels, height, width] planes without their padding, read as if pad_height
// zero rows and pad_width zero columns surrounded each.
template <class T>
struct UnpaddedPlanes {
  const T* data;
  std::int64_t batch, channels, height, width, pad_height, pad_width;
};

struct KernelWindow {
  std::int64_t height, width, stride, dilation;
};

// Whether the in-place form suits a convolution producing `outputs` channels from a GEMM
// of `depth` (taps for the forward and input gradient, pixels for the weight gradient).
// The outputs are the microkernel's columns, so fewer than half a panel (AVX2: 8 of 16
// floats) would waste most of a tile, and a short depth leaves the transposed result's
// copy into NCHW uncovered (a 1x1 kernel over 32 channels: 1.4x slower than the packed
// path). Those stay on the packed implicit GEMM (bench_unet_kernels decided both limits on
// AVX2; the half panel scales them to the kernel in use, unmeasured on AVX-512).
bool shifted_convolution_suits(std::int64_t outputs, std::int64_t depth);

// out[n, o, oy, ox] = bias[o] + Σ_{c, kh, kw} weight[o, (c·KH + kh)·KW + kw] ·
//                     padded[n, c, oy·s + kh·d, ox·s + kw·d]
// weight: [outputs, C·KH·KW] row-major; out: [batch, outputs, out_height, out_width]; bias
// may be null. Each task pads the images it reads into its own scratch (in cache), rather
// than the whole batch being padded in a pass of its own through memory.
template <class T>
void correlate_shifted(const UnpaddedPlanes<T>& planes, const KernelWindow& window, std::int64_t out_height,
                       std::int64_t out_width, std::int64_t outputs, const T* weight, const T* bias, T* out);

// weight_gradient[o, (c·KH + kh)·KW + kw] = Σ_{n, oy, ox} output_gradient[n, o, oy, ox] ·
//                                           planes[n, c, oy·s + kh·d, ox·s + kw·d]
// output_gradient: [batch, outputs, out_height, out_width]; weight_gradient: [outputs, C·KH·KW].
template <class T>
void weight_gradient_shifted(const PaddedPlanes<T>& planes, const KernelWindow& window, std::int64_t out_height,
                             std::int64_t out_width, std::int64_t outputs, const T* output_gradient,
                             T* weight_gradient);

// The input gradient of a strided convolution: gradient holds dY [batch, Co, OH, OW]
// padded by pad_height rows and pad_width columns (at least ceil((K-1)·d / s) + 1 each),
// weight is [Co, in_channels, KH, KW], input_gradient [batch, in_channels, in_height, in_width].
template <class T>
void input_gradient_by_phases(const PaddedPlanes<T>& gradient, std::int64_t pad_height, std::int64_t pad_width,
                              const KernelWindow& window, std::int64_t padding, std::int64_t in_height,
                              std::int64_t in_width, std::int64_t in_channels, const T* weight, T* input_gradient);

}  // namespace ddpm::convolution_detail
