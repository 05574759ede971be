#pragma once
// Convolution as a GEMM whose im2col operand is never stored: the packers read the taps
// from the padded input planes while packing the GEMM's panels (tensor/gemm/gemm.hpp's
// pack callbacks). The general path: any kernel, stride, dilation and channel count; the
// dispatcher (tensor/convolution.cpp) takes it when no faster algorithm suits.
#include <cstdint>

#include "tensor/convolution/geometry.hpp"
#include "tensor/convolution/padding.hpp"

namespace ddpm::convolution_detail::implicit_gemm {

// output [N, Co, OH, OW] = bias + Σ weight[Co, Ci·KH·KW] · taps of x, x padded by the
// geometry's padding; bias [Co] or null. Per image, C = W · taps(x_n): each output is
// summed over the taps in one fixed order (the GEMM's depth blocks).
template <class T>
void forward(const Geometry& g, const PaddedInput& x, const T* weight, const T* bias, T* output);

// input_gradient [N, Ci, H, W] of a strided convolution: the columns Wᵀ · dY_n of a few
// images at a time, scattered back onto the input pixels (col2im), each pixel summing its
// taps in a fixed order. (Stride 1 is the forward correlation of dY instead: convolution.cpp.)
template <class T>
void input_gradient_by_columns(const Geometry& g, const T* output_gradient, const T* weight, T* input_gradient);

// weight_gradient [Co, Ci, KH, KW] = Σ over images and pixels of dY ⊗ taps of x (x padded
// by the geometry's padding): dWᵀ = col · dYᵀ, tasks split by tap, each running the whole
// depth in order.
template <class T>
void weight_gradient(const Geometry& g, const PaddedInput& x, const T* output_gradient, T* weight_gradient);

}  // namespace ddpm::convolution_detail::implicit_gemm
