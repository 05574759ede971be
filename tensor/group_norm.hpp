#pragma once
// GroupNorm over [N, C, H, W] with the affine transform, and optionally SiLU, fused
// (the U-Net always applies SiLU after GroupNorm). Statistics are accumulated per
// (image, group) in a fixed order; the forward reads the data twice while it is in cache
// and writes it once; the backward reads x and the output gradient twice.
#include "tensor/tensor.hpp"

namespace ddpm {

struct GroupNormOutput {
  Tensor output;         // [N, C, H, W]
  Tensor mean;           // [N, groups]
  Tensor inverse_std;    // [N, groups]: 1 / sqrt(var + eps), var biased as PyTorch
};

GroupNormOutput group_norm(const Tensor& input, std::int64_t groups, const Tensor& gamma, const Tensor& beta,
                           double eps, bool apply_silu);

struct GroupNormGradients {
  Tensor input, gamma, beta;
};

GroupNormGradients group_norm_backward(const Tensor& output_gradient, const Tensor& input, const Tensor& mean,
                                       const Tensor& inverse_std, std::int64_t groups, const Tensor& gamma,
                                       const Tensor& beta, bool apply_silu);

// References computed from the definition in double.
GroupNormOutput group_norm_reference(const Tensor& input, std::int64_t groups, const Tensor& gamma,
                                     const Tensor& beta, double eps, bool apply_silu);
GroupNormGradients group_norm_backward_reference(const Tensor& output_gradient, const Tensor& input,
                                                 std::int64_t groups, const Tensor& gamma, const Tensor& beta,
                                                 double eps, bool apply_silu);

}  // namespace ddpm
