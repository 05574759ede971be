#pragma once
// The forward process and the conversions between parameterisations, batched: `steps` is
// an int64 [B] tensor of indices into the schedule (not the model's timesteps, which
// schedule.timesteps maps them to).
#include "ddpm/schedule.hpp"
#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

// table[steps[b]] for each b, as a [B, 1, 1, 1] tensor of `dtype` (broadcasts over images).
Tensor per_image(const std::vector<double>& table, const Tensor& steps, DType dtype = DType::Float32);
// The model's timesteps for schedule indices `steps`.
Tensor model_timesteps(const NoiseSchedule& schedule, const Tensor& steps);

// x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε
Tensor q_sample(const NoiseSchedule& schedule, const Tensor& x0, const Tensor& steps, const Tensor& noise);

struct Gaussian {
  Tensor mean, log_variance;  // log_variance broadcasts like [B, 1, 1, 1] or the full shape
};
// q(x_{t-1} | x_t, x0): mean c1 x0 + c2 x_t, log variance log β̃_t (clipped at t = 0).
Gaussian q_posterior(const NoiseSchedule& schedule, const Tensor& x0, const Tensor& xt, const Tensor& steps);

// x0 = sqrt(1/ᾱ) x_t - sqrt(1/ᾱ - 1) ε, and back.
Tensor x0_from_epsilon(const NoiseSchedule& schedule, const Tensor& xt, const Tensor& steps, const Tensor& epsilon);
Tensor epsilon_from_x0(const NoiseSchedule& schedule, const Tensor& xt, const Tensor& steps, const Tensor& x0);
// v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x0 (Salimans & Ho), and the predictions it implies.
Tensor v_from(const NoiseSchedule& schedule, const Tensor& x0, const Tensor& steps, const Tensor& epsilon);
Tensor x0_from_v(const NoiseSchedule& schedule, const Tensor& xt, const Tensor& steps, const Tensor& v);
Tensor epsilon_from_v(const NoiseSchedule& schedule, const Tensor& xt, const Tensor& steps, const Tensor& v);

}  // namespace ddpm::diffusion
