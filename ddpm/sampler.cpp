#include "ddpm/sampler.hpp"

#include <cmath>

#include "ddpm/diffusion.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/factory.hpp"
#include "tensor/joining.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

namespace ddpm::diffusion {

Variance parse_variance(const std::string& name) {
  if (name == "large") return Variance::FixedLarge;
  if (name == "small") return Variance::FixedSmall;
  if (name == "learned") return Variance::Learned;
  fail("variance", "unknown variance '", name, "' (large, small, learned)");
}

Tensor keyed_noise(std::uint64_t seed, std::int64_t step, std::int64_t first_image, const Shape& shape) {
  const std::int64_t per_image = shape_numel(shape) / std::max<std::int64_t>(shape[0], 1);
  // Counter = (step · 2^24 + image) · pixels + pixel: disjoint for up to 16M images a step.
  const std::uint64_t base = (static_cast<std::uint64_t>(step) << 24) * static_cast<std::uint64_t>(per_image);
  Tensor noise = Tensor::empty(shape, DType::Float32);
  float* data = noise.data<float>();
  parallel_for(noise.numel(), 1 << 14, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i)
      data[i] = static_cast<float>(normal_at(seed, base + static_cast<std::uint64_t>(first_image * per_image), static_cast<std::uint64_t>(i)));
  });
  return noise;
}

SampleResult sample(const NoiseSchedule& base, const Denoiser& denoiser, const Shape& shape,
                    const SamplerOptions& options) {
  check(shape.size() == 4, "sample", "shape must be [B, C, H, W], got ", shape_string(shape));
  check(options.eta >= 0, "sample", "eta must be >= 0, got ", options.eta);
  const NoiseSchedule schedule = options.steps > 0 && options.steps < base.size() ? respace(base, options.steps) : base;
  const std::int64_t batch = shape[0], channels = shape[1], total = schedule.size();
  const bool guided = options.guidance != 0.0 && options.labels.defined();
  // fixedlarge uses β_t, with β̃_1 at index 0 as the reference code does.
  std::vector<double> large_log_variance(schedule.betas.size());
  for (std::size_t i = 0; i < large_log_variance.size(); ++i)
    large_log_variance[i] = std::log(i == 0 && large_log_variance.size() > 1 ? schedule.posterior_variance[1] : schedule.betas[i]);

  SampleResult result;
  Tensor x = keyed_noise(options.seed, total, options.first_image, shape);
  for (std::int64_t i = total - 1; i >= 0; --i) {
    const Tensor steps = full({batch}, static_cast<double>(i), DType::Int64);
    const Tensor timesteps = full({batch}, static_cast<double>(schedule.timesteps[static_cast<std::size_t>(i)]), DType::Int64);
    Tensor output = denoiser(x, timesteps, options.labels);
    check(output.rank() == 4 && output.size(0) == batch && (output.size(1) == channels || output.size(1) == 2 * channels),
          "sample", "the model returned ", shape_string(output.shape()), " for input ", shape_string(shape));
    Tensor epsilon = output.narrow(1, 0, channels);
    if (guided) {
      const Tensor unconditional = denoiser(x, timesteps, Tensor()).narrow(1, 0, channels);
      epsilon = sub(mul(epsilon, 1.0 + options.guidance), mul(unconditional, options.guidance));
    }
    Tensor x0 = x0_from_epsilon(schedule, x, steps, epsilon);
    if (options.clip_x0) x0 = minimum(maximum(x0, -1.0), 1.0);
    const Tensor noise = i > 0 ? keyed_noise(options.seed, i, options.first_image, shape) : Tensor();
    if (options.ddim) {
      const double abar = schedule.alphas_cumprod[static_cast<std::size_t>(i)];
      const double abar_prev = schedule.alphas_cumprod_prev[static_cast<std::size_t>(i)];
      const Tensor eps = epsilon_from_x0(schedule, x, steps, x0);
      const double sigma = options.eta * std::sqrt((1 - abar_prev) / (1 - abar)) * std::sqrt(1 - abar / abar_prev);
      x = add(mul(x0, std::sqrt(abar_prev)), mul(eps, std::sqrt(std::max(0.0, 1 - abar_prev - sigma * sigma))));
      if (i > 0 && sigma > 0) x = add(x, mul(noise, sigma));
    } else {
      const Tensor mean = q_posterior(schedule, x0, x, steps).mean;
      Tensor log_variance;
      if (options.variance == Variance::FixedLarge) log_variance = per_image(large_log_variance, steps);
      else if (options.variance == Variance::FixedSmall) log_variance = per_image(schedule.posterior_log_variance_clipped, steps);
      else {
        check(output.size(1) == 2 * channels, "sample", "a learned variance needs a model with 2x output channels, got ",
              output.size(1));
        // v in [-1, 1] interpolates log β (at v = 1) and log β̃ (at v = -1).
        const Tensor fraction = mul(add(output.narrow(1, channels, channels), 1.0), 0.5);
        std::vector<double> log_betas;
        for (double beta : schedule.betas) log_betas.push_back(std::log(beta));
        log_variance = add(mul(fraction, per_image(log_betas, steps)),
                           mul(sub(1.0, fraction), per_image(schedule.posterior_log_variance_clipped, steps)));
      }
      x = i > 0 ? add(mean, mul(exp(mul(log_variance, 0.5)), noise)) : mean;
    }
    if (options.record_every > 0 && (i % options.record_every == 0 || i == total - 1)) {
      result.trajectory.push_back(x);
      result.predicted_x0.push_back(x0);
    }
    if (options.progress) options.progress(total - i, total);
  }
  result.images = options.clip_x0 ? minimum(maximum(x, -1.0), 1.0) : x;
  return result;
}

}  // namespace ddpm::diffusion
