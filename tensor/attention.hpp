#pragma once
// Single-head scaled dot-product attention, image by image: O = softmax(Q Kᵀ · scale) V
// over [B, L, C] tensors (L = H·W pixels). Only one [L, L] score matrix per image in flight
// (per running task); the backward recomputes it instead of keeping B of them.
#include "tensor/tensor.hpp"

namespace ddpm {

Tensor attention(const Tensor& query, const Tensor& key, const Tensor& value, double scale);

struct AttentionGradients {
  Tensor query, key, value;
};
AttentionGradients attention_backward(const Tensor& output_gradient, const Tensor& query, const Tensor& key,
                                      const Tensor& value, double scale);

// Nearest-neighbour x2 upsampling of [N, C, H, W] and its adjoint (sums of 2x2 blocks).
Tensor upsample_nearest2x(const Tensor& input);
Tensor upsample_nearest2x_backward(const Tensor& output_gradient);

}  // namespace ddpm
