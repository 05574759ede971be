#include "ddpm/sampler.hpp"

#include <cmath>

#include "ddpm/conditioning.hpp"
#include "ddpm/diffusion.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/factory.hpp"
#include "tensor/joining.hpp"
#include "tensor/parallel.hpp"
#include "tensor/random.hpp"

namespace ddpm::diffusion {

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

  SampleResult result;
  Tensor x = keyed_noise(options.seed, total, options.first_image, shape);
  for (std::int64_t i = total - 1; i >= 0; --i) {
    const Tensor steps = full({batch}, static_cast<double>(i), DType::Int64);
    const Tensor timesteps = full({batch}, static_cast<double>(schedule.timesteps[static_cast<std::size_t>(i)]), DType::Int64);
    Tensor output = denoiser(x, timesteps, options.labels);
    const ModelOutput halves = split_model_output(Variable(output), shape, options.variance, "sample");
    Variable prediction = halves.prediction;
    // Guidance mixes raw outputs: each target is linear in ε at fixed x_t, so this is the
    // guided ε's mix whatever the model predicts.
    if (guided)
      prediction = Variable(guided_epsilon(prediction.value(), denoiser(x, timesteps, Tensor()).narrow(1, 0, channels), options.guidance));
    const ModelDistribution model = model_distribution(schedule, prediction, halves.variance_half, x, steps, options.variance,
                                                       options.clip_x0, options.prediction);
    const Tensor x0 = model.predicted_x0.value();
    const Tensor noise = i > 0 ? keyed_noise(options.seed, i, options.first_image, shape) : Tensor();
    if (options.ddim) {
      const double abar = schedule.alphas_cumprod[static_cast<std::size_t>(i)];
      const double abar_prev = schedule.alphas_cumprod_prev[static_cast<std::size_t>(i)];
      const Tensor eps = epsilon_from_x0(schedule, x, steps, x0);
      const double sigma = options.eta * std::sqrt((1 - abar_prev) / (1 - abar)) * std::sqrt(1 - abar / abar_prev);
      x = add(mul(x0, std::sqrt(abar_prev)), mul(eps, std::sqrt(std::max(0.0, 1 - abar_prev - sigma * sigma))));
      if (i > 0 && sigma > 0) x = add(x, mul(noise, sigma));
    } else {
      const Tensor mean = model.mean.value();
      x = i > 0 ? add(mean, mul(exp(mul(model.log_variance.value(), 0.5)), noise)) : mean;
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
