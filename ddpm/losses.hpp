#pragma once
// Losses of DDPM training and the terms of the variational bound, in nats unless stated.
#include "autograd/variable.hpp"
#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

// L_simple: mean over every element of (ε_θ - ε)².
Variable simple_loss(const Variable& predicted_noise, const Tensor& noise);

// KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise (broadcasting).
Tensor normal_kl(const Tensor& mean1, const Tensor& log_variance1, const Tensor& mean2, const Tensor& log_variance2);

// The tanh approximation of the standard normal CDF used by the reference code.
Tensor approx_standard_normal_cdf(const Tensor& x);

// log p(x) of data x in [-1, 1] (256 levels, bins of width 2/255, open-ended edge bins)
// under N(mean, e^log_variance) discretised, elementwise.
Tensor discretized_gaussian_log_likelihood(const Tensor& x, const Tensor& mean, const Tensor& log_variance);

}  // namespace ddpm::diffusion
