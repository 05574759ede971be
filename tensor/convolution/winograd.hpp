#pragma once
// 3 x 3, stride-1 convolutions by Winograd's minimal filtering F(m x m, 3 x 3) (Lavin and
// Gray, "Fast Algorithms for Convolutional Neural Networks", 2016; the algorithms in
// winograd_algorithms.hpp). An (m + 2) x (m + 2) input tile d and a 3 x 3 kernel g give
// the tile's m x m outputs as
//     Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A,
// (m + 2)² products where the direct sum takes 9 m². Summed over input channels, the
// products are (m + 2)² independent GEMMs (one per point of the transformed tile): tiles x
// inputs times inputs x outputs, run on the GEMM microkernel. The results differ from the
// direct sum by rounding alone: F(2x2) at the direct sum's level, F(4x4) about 5x more
// (tests bound both against a float64 reference).
//
// One of the convolution algorithms that tensor/convolution.cpp chooses from.
#include <cstdint>

#include "tensor/convolution/fusion.hpp"
#include "tensor/convolution/geometry.hpp"

namespace ddpm::convolution_detail {

// Whether a Winograd algorithm serves a convolution: a 3 x 3 kernel, stride 1, dilation 1, and at
// least 16 input channels (the GEMMs' depth) and 16 outputs (their columns); with fewer,
// the transforms cost more than the products they save (a U-Net's conv_in and conv_out
// stay on their own paths).
bool winograd_suits(const Geometry& g);

// The output tile m of the algorithm in use, 4 or 2, for the correlations and the weight
// gradients alike (tensor/convolution.hpp, select_winograd_tile).
int winograd_output_tile();

// out[n, o, y, x] = bias[o] + Σ_{c, kh, kw} weight[o, c, kh, kw] · input[n, c, y + kh − padding, x + kw − padding]
// (input zero outside its planes). input: [batch, in_channels, height, width], contiguous;
// weight: [out_channels, in_channels, 3, 3]; out: [batch, out_channels, out_height,
// out_width]; bias may be null. Each output is summed within one task in a fixed order:
// the same bits for any thread count.
// Lasting: the weights are a model's, likely to come again unchanged (their transform may be
// kept, winograd.cpp); ThisCall: a temporary (the input gradient's rotated kernel).
// The input fusion (fusion.hpp) is applied as the input is copied into channels-last order, and
// image_bias [batch, out_channels] (may be null), after the bias, as the output transform
// writes each value: the transforms' own passes.
enum class WeightLifetime { Lasting, ThisCall };
template <class T>
void correlate_winograd(const Geometry& g, const T* input, const T* weight, const T* bias, T* out,
                        WeightLifetime lifetime = WeightLifetime::Lasting, const InputFusion<T>& input_fusion = {},
                        const T* image_bias = nullptr);

// The weight gradient of the same correlation:
// weight_gradient[o, c, kh, kw] = Σ_{n, y, x} output_gradient[n, o, y, x] · input[n, c, y + kh − padding, x + kw − padding]
// input and output_gradient contiguous; weight_gradient: [out_channels, in_channels, 3, 3].
// The batch is summed in fixed slices, in order: the same bits for any thread count.
template <class T>
void weight_gradient_winograd(const Geometry& g, const T* input, const T* output_gradient, T* weight_gradient);

}  // namespace ddpm::convolution_detail
