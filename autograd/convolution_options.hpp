#pragma once
// Internal to autograd (not installed): the options a convolution's forward runs with.
#include "autograd/variable.hpp"
#include "tensor/convolution.hpp"

namespace ddpm {

// A weight being trained changes at every step, so its transformed form is not worth
// keeping between calls (tensor/convolution.hpp, reuse_weight_transform); frozen weights,
// or any under NoGrad (sampling), keep theirs.
inline Convolution2dOptions forward_options(Convolution2dOptions options, const Variable& weight) {
  options.reuse_weight_transform = options.reuse_weight_transform && !(grad_enabled() && weight.requires_grad());
  return options;
}

}  // namespace ddpm
