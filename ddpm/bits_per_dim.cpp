#include "ddpm/bits_per_dim.hpp"

#include <cmath>
#include <numbers>

#include "ddpm/diffusion.hpp"
#include "ddpm/losses.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/factory.hpp"
#include "tensor/joining.hpp"
#include "tensor/reduction.hpp"

namespace ddpm::diffusion {

BoundTerms variational_bound(const NoiseSchedule& schedule, const Denoiser& denoiser, const Tensor& x0,
                             Variance variance, bool clip_x0, std::uint64_t seed, std::int64_t first_image) {
  check(x0.rank() == 4, "variational_bound", "x0 must be [B, C, H, W], got ", shape_string(x0.shape()));
  const std::int64_t batch = x0.size(0), channels = x0.size(1), total = schedule.size();
  const Tensor data = x0.to(DType::Float64);
  const double bits = 1.0 / std::log(2.0);
  auto per_image_mean = [&](const Tensor& values) { return mul(mean(values, {1, 2, 3}), bits); };

  // Prior: q(x_T | x0) = N(sqrt(ᾱ_T) x0, 1 - ᾱ_T) against N(0, 1).
  const double abar_last = schedule.alphas_cumprod.back();
  const Tensor prior = per_image_mean(normal_kl(mul(data, std::sqrt(abar_last)), full({1}, std::log(1 - abar_last), DType::Float64),
                                                zeros({1}, DType::Float64), zeros({1}, DType::Float64)));
  std::vector<double> large_log_variance(schedule.betas.size()), log_betas;
  for (std::size_t i = 0; i < large_log_variance.size(); ++i) {
    large_log_variance[i] = std::log(i == 0 && large_log_variance.size() > 1 ? schedule.posterior_variance[1] : schedule.betas[i]);
    log_betas.push_back(std::log(schedule.betas[i]));
  }
  std::vector<Tensor> columns;
  for (std::int64_t i = 0; i < total; ++i) {
    const Tensor steps = full({batch}, static_cast<double>(i), DType::Int64);
    const Tensor noise = keyed_noise(seed, i, first_image, x0.shape()).to(DType::Float64);
    const Tensor xt = q_sample(schedule, data, steps, noise);
    const Tensor timesteps = full({batch}, static_cast<double>(schedule.timesteps[static_cast<std::size_t>(i)]), DType::Int64);
    const Tensor output = denoiser(xt.to(x0.dtype()), timesteps, Tensor()).to(DType::Float64);
    Tensor predicted_x0 = x0_from_epsilon(schedule, xt, steps, output.narrow(1, 0, channels));
    if (clip_x0) predicted_x0 = minimum(maximum(predicted_x0, -1.0), 1.0);
    const Tensor model_mean = q_posterior(schedule, predicted_x0, xt, steps).mean;
    Tensor model_log_variance;
    if (variance == Variance::FixedLarge) model_log_variance = per_image(large_log_variance, steps, DType::Float64);
    else if (variance == Variance::FixedSmall) model_log_variance = per_image(schedule.posterior_log_variance_clipped, steps, DType::Float64);
    else {
      check(output.size(1) == 2 * channels, "variational_bound", "a learned variance needs 2x output channels");
      const Tensor fraction = mul(add(output.narrow(1, channels, channels), 1.0), 0.5);
      model_log_variance = add(mul(fraction, per_image(log_betas, steps, DType::Float64)),
                               mul(sub(1.0, fraction), per_image(schedule.posterior_log_variance_clipped, steps, DType::Float64)));
    }
    if (i == 0) {
      columns.push_back(per_image_mean(neg(discretized_gaussian_log_likelihood(data, model_mean, model_log_variance))));
    } else {
      const Gaussian truth = q_posterior(schedule, data, xt, steps);
      columns.push_back(per_image_mean(normal_kl(truth.mean, truth.log_variance, model_mean, model_log_variance)));
    }
  }
  const Tensor terms = stack(columns, 1);
  return {prior, terms, add(prior, sum(terms, {1}))};
}

}  // namespace ddpm::diffusion
