#pragma once
// 2-D convolution, NCHW activations and OIHW weights (PyTorch's layouts), on the GEMM:
// the im2col matrix is produced panel by panel inside the GEMM's packing, never as a
// whole-batch buffer.
//   forward:          Y_n[Co, OHW]   = W[Co, Ci·K]    · col(X_n)[Ci·K, OHW]  (+ bias)
//   input gradient:   dX_n[Ci, HW]   = W'[Ci, Co·K]   · col'(dY_n)[Co·K, HW]
//                     (the transposed convolution, as an implicit GEMM too)
//   weight gradient:  dW[Co, Ci·K]   = Σ_n dY_n[Co, OHW] · col(X_n)ᵀ[OHW, Ci·K]
#include "tensor/tensor.hpp"

namespace ddpm {

struct Convolution2dOptions {
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  std::int64_t dilation = 1;
  // Whether the weights are likely to come again unchanged (inference): a convolution may
  // then keep its transformed weights between calls (Winograd, checked against a copy of
  // the weights, never stale). Autograd clears it for weights that are being trained.
  bool reuse_weight_transform = true;
};

// input [N, Ci, H, W], weight [Co, Ci, KH, KW], bias [Co] or undefined -> [N, Co, OH, OW].
// image_bias [N, Co] or undefined: a bias per image and output channel (a U-Net block's
// time embedding), added after `bias` as an addition of its own, bit for bit
// add(conv2d(...), image_bias viewed [N, Co, 1, 1]); the Winograd path adds it as it writes
// each output, instead of reading the output again.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Convolution2dOptions& options,
              const Tensor& image_bias = Tensor());

// conv2d(SiLU(GroupNorm(input, groups, gamma, beta, eps)), weight, bias, options, image_bias),
// bit for bit those ops in a row, for inference (nothing is kept for a backward): on the
// Winograd path the normalised input is never written out, its values computed as the
// convolution copies the input into its own layout. input [N, Ci, H, W], gamma and beta [Ci].
Tensor group_norm_silu_conv2d(const Tensor& input, std::int64_t groups, const Tensor& gamma, const Tensor& beta,
                              double eps, const Tensor& weight, const Tensor& bias, const Convolution2dOptions& options,
                              const Tensor& image_bias = Tensor());

// conv2d(upsample_nearest2x(input), weight, bias, options), bit for bit, for inference: on
// the Winograd path the upsampled input is never written out, each value read where the
// convolution copies the input into its own layout. input [N, Ci, H, W]; the output is that
// of a convolution of [N, Ci, 2H, 2W].
Tensor upsample_nearest2x_conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                 const Convolution2dOptions& options);
// output_gradient [N, Co, OH, OW] -> [N, Ci, H, W] (input_shape).
Tensor conv2d_input_gradient(const Tensor& output_gradient, const Tensor& weight, const Shape& input_shape,
                             const Convolution2dOptions& options);
// -> [Co, Ci, KH, KW]; the batch is summed in order, so the result is thread-count invariant.
Tensor conv2d_weight_gradient(const Tensor& output_gradient, const Tensor& input, const Shape& weight_shape,
                              const Convolution2dOptions& options);

// The algorithm of the 3 x 3, stride-1 convolutions with at least 16 channels each way
// (the U-Net's), forward, input gradient and weight gradient: Winograd's F(m x m, 3 x 3)
// with output tile m = 4 (the default: 36 products per 16 outputs; float32 results within
// a relative rms of about 2e-6 of the exact sum) or m = 2 (16 products per 4 outputs,
// 1.78x the work; its rounding that of the direct sum, 2-3.5e-7). The environment
// variable DDPM_WINOGRAD_TILE (2 or 4) sets it for a process; select_winograd_tile for
// what follows in this one. Either way the bits do not depend on the thread count.
void select_winograd_tile(int tile);
int selected_winograd_tile();

// Output spatial size of a convolution; throws naming the op when it would be empty.
std::int64_t conv2d_output_size(std::int64_t input, std::int64_t kernel, const Convolution2dOptions& options);

// Direct seven-loop references the GEMM versions are tested against.
Tensor conv2d_reference(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const Convolution2dOptions& options);
Tensor conv2d_input_gradient_reference(const Tensor& output_gradient, const Tensor& weight, const Shape& input_shape,
                                       const Convolution2dOptions& options);
Tensor conv2d_weight_gradient_reference(const Tensor& output_gradient, const Tensor& input, const Shape& weight_shape,
                                        const Convolution2dOptions& options);

}  // namespace ddpm
