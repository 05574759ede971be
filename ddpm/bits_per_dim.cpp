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
                             Variance variance, bool clip_x0, std::uint64_t seed, std::int64_t first_image,
                             Prediction prediction) {
  check(x0.rank() == 4, "variational_bound", "x0 must be [B, C, H, W], got ", shape_string(x0.shape()));
  const std::int64_t batch = x0.size(0), total = schedule.size();
  const Tensor data = x0.to(DType::Float64);
  const double bits = 1.0 / std::log(2.0);

  // Prior: q(x_T | x0) = N(sqrt(ᾱ_T) x0, 1 - ᾱ_T) against N(0, 1).
  const double abar_last = schedule.alphas_cumprod.back();
  const Tensor prior = mul(mean(normal_kl(mul(data, std::sqrt(abar_last)), full({1}, std::log(1 - abar_last), DType::Float64),
                                                zeros({1}, DType::Float64), zeros({1}, DType::Float64)), {1, 2, 3}), bits);
  std::vector<Tensor> columns;
  for (std::int64_t i = 0; i < total; ++i) {
    const Tensor steps = full({batch}, static_cast<double>(i), DType::Int64);
    const Tensor noise = keyed_noise(seed, i, first_image, x0.shape()).to(DType::Float64);
    const Tensor xt = q_sample(schedule, data, steps, noise);
    const Tensor timesteps = full({batch}, static_cast<double>(schedule.timesteps[static_cast<std::size_t>(i)]), DType::Int64);
    const Tensor output = denoiser(xt.to(x0.dtype()), timesteps, Tensor()).to(DType::Float64);
    const ModelOutput halves = split_model_output(Variable(output), x0.shape(), variance, "variational_bound");
    const ModelDistribution model = model_distribution(schedule, halves.prediction, halves.variance_half, xt, steps, variance, clip_x0, prediction);
    columns.push_back(variational_bound_term(schedule, model, data, xt, steps).value());
  }
  const Tensor terms = stack(columns, 1);
  return {prior, terms, add(prior, sum(terms, {1}))};
}

}  // namespace ddpm::diffusion
