#pragma once
// Convolutions with a handful of output channels (a U-Net's conv_out: 1 or 2), stride 1
// and kernels of at most 3 x 3, computed directly. As a GEMM their output channels would
// fill a sixteenth of a microkernel tile (NR = 16) or a sixth (MR = 6) the other way round;
// directly, they are dot products along output rows, eight columns at a time in local
// accumulators the compiler keeps in vector registers. Every value is summed in a fixed
// order within one task: thread-count invariant. Internal to tensor/convolution.cpp.
#include <cstdint>

#include "tensor/convolution/geometry.hpp"

namespace ddpm::convolution_detail {

bool direct_convolution_suits(const Geometry& g);

// output [N, Co, OH, OW] from the input planes padded to padded_height x padded_width;
// weight [Co, Ci, KH, KW]; bias [Co] or null.
template <class T>
void convolve_directly(const Geometry& g, const T* padded, std::int64_t padded_height, std::int64_t padded_width,
                       const T* weight, const T* bias, T* output);

// weight_gradient [Co, Ci, KH, KW] from output_gradient [N, Co, OH, OW] and the padded input.
template <class T>
void weight_gradient_directly(const Geometry& g, const T* output_gradient, const T* padded,
                              std::int64_t padded_height, std::int64_t padded_width, T* weight_gradient);

}  // namespace ddpm::convolution_detail
