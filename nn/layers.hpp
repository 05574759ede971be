#pragma once
// The basic layers, with PyTorch's parameter names, layouts and default initialisation
// (kaiming-uniform with a = sqrt(5) for weights, uniform ±1/sqrt(fan_in) for biases).
#include "autograd/functions.hpp"
#include "nn/module.hpp"
#include "tensor/random.hpp"

namespace ddpm::nn {

// Uniform in [-bound, bound).
Tensor uniform_init(const Shape& shape, double bound, Generator& generator);

// y = x Wᵀ + b over the last axis: x [..., in] -> [..., out]; weight [out, in], bias [out].
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& generator);
  Variable forward(const Variable& x) const;
  Variable weight, bias;
};

// NCHW convolution; weight [out, in, k, k], bias [out].
class Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel, std::int64_t stride,
         std::int64_t padding, Generator& generator);
  Variable forward(const Variable& x) const;
  Variable weight, bias;
  Convolution2dOptions options;
};

// GroupNorm with affine weight (gamma = 1) and bias (beta = 0); forward can fuse SiLU.
class GroupNorm : public Module {
 public:
  GroupNorm(std::int64_t groups, std::int64_t channels, double eps = 1e-5);
  Variable forward(const Variable& x, bool apply_silu = false) const;
  Variable weight, bias;
  std::int64_t groups;
  double eps;
};

// Rows of a [count, dim] table picked by int64 indices; N(0, 1) initialisation.
class Embedding : public Module {
 public:
  Embedding(std::int64_t count, std::int64_t dim, Generator& generator);
  Variable forward(const Tensor& indices) const;
  Variable weight;
};

// Inverted dropout: zeroes each element with probability p and scales the rest by
// 1/(1-p). The mask comes from the counter-based generator, so it is reproducible.
Variable dropout(const Variable& x, double p, bool training, Generator& generator);

// conv(dropout(SiLU(norm(x)))) (+ image_bias [N, Co]) as the U-Net applies it, through the
// fused op that recomputes the activation in backward instead of keeping it, and in
// inference never stores it (autograd/functions.hpp); the same values as the layers one
// after another. Dropout applies when training with p > 0.
Variable normalize_activate_convolve(const GroupNorm& norm, const Conv2d& conv, const Variable& x, double dropout_p,
                                     bool training, Generator& generator, const Variable& image_bias = Variable());

// The DDPM sinusoidal embedding of integer timesteps t [B] -> [B, dim]: sines then
// cosines of t·exp(-ln(10000) i / (dim/2 - 1)), computed in float32 as PyTorch does.
Tensor timestep_embedding(const Tensor& timesteps, std::int64_t dim);

}  // namespace ddpm::nn
