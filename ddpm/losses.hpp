#pragma once
// Losses of DDPM training and the terms of the variational bound, in nats unless stated.
// The Gaussian terms are written once on Variables (training differentiates them); the
// Tensor overloads evaluate the same formulas without a graph.
#include "autograd/variable.hpp"
#include "ddpm/model_distribution.hpp"
#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

// L_simple: mean over every element of (ε_θ - ε)².
Variable simple_loss(const Variable& predicted_noise, const Tensor& noise);

// KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise (broadcasting).
Variable normal_kl(const Variable& mean1, const Variable& log_variance1, const Variable& mean2, const Variable& log_variance2);
Tensor normal_kl(const Tensor& mean1, const Tensor& log_variance1, const Tensor& mean2, const Tensor& log_variance2);

// The tanh approximation of the standard normal CDF used by the reference code.
Variable approx_standard_normal_cdf(const Variable& x);
Tensor approx_standard_normal_cdf(const Tensor& x);

// log p(x) of data x in [-1, 1] (256 levels, bins of width 2/255, open-ended edge bins)
// under N(mean, e^log_variance) discretised, elementwise.
Variable discretized_gaussian_log_likelihood(const Tensor& x, const Variable& mean, const Variable& log_variance);
Tensor discretized_gaussian_log_likelihood(const Tensor& x, const Tensor& mean, const Tensor& log_variance);

// One term of the variational bound per image, in bits per dimension (as improved DDPM's
// _vb_terms_bpd): the decoder's -log p_θ(x0 | x_1) where steps[b] == 0, otherwise
// L_{t-1} = KL(q(x_{t-1} | x_t, x0) || p_θ(x_{t-1} | x_t)).
// x0, xt [B, C, H, W]; steps int64 [B] -> [B].
Variable variational_bound_term(const NoiseSchedule& schedule, const ModelDistribution& model, const Tensor& x0,
                                const Tensor& xt, const Tensor& steps);

}  // namespace ddpm::diffusion
