#include "ddpm/training_loss.hpp"

#include "autograd/functions.hpp"
#include "ddpm/losses.hpp"

namespace ddpm::diffusion {

TrainingLoss training_loss(const NoiseSchedule& schedule, const Variable& output, const Tensor& x0, const Tensor& xt,
                           const Tensor& steps, const Tensor& noise, const TrainingLossOptions& options) {
  check(x0.rank() == 4 && xt.shape() == x0.shape() && noise.shape() == x0.shape(), "training_loss", "x0 ",
        shape_string(x0.shape()), ", x_t ", shape_string(xt.shape()), " and noise ", shape_string(noise.shape()),
        " must be one [B, C, H, W] shape");
  const bool learned = output.rank() == 4 && output.size(1) == 2 * x0.size(1);
  check(options.type != LossType::Hybrid || learned, "training_loss",
        "the hybrid loss trains a learned variance: the model needs 2C output channels, got ", shape_string(output.shape()));
  const Variance variance = learned ? Variance::Learned : options.fixed_variance;
  const ModelOutput halves = split_model_output(output, x0.shape(), variance, "training_loss");
  const double timesteps = static_cast<double>(schedule.size());

  TrainingLoss result;
  const Tensor target = prediction_target(schedule, options.prediction, x0, noise, steps);
  const Variable mse = mean(square(sub(halves.prediction, Variable(target))), {1, 2, 3});
  result.mse = mse.value();
  Variable per_image = mse;
  if (options.type != LossType::Simple) {
    // Hybrid: the bound sees the mean as a constant (the prediction detached) and trains only the variance.
    const Variable mean_input = options.type == LossType::Hybrid ? halves.prediction.detach() : halves.prediction;
    const ModelDistribution model =
        model_distribution(schedule, mean_input, halves.variance_half, xt, steps, variance, false, options.prediction);
    const Variable bound = mul(variational_bound_term(schedule, model, x0, xt, steps), timesteps);
    result.bound = bound.value();
    per_image = options.type == LossType::Hybrid ? add(mse, mul(bound, options.hybrid_weight)) : bound;
  }
  result.per_image_loss = per_image;
  result.per_image = per_image.value();
  result.loss = mean(per_image);
  return result;
}

}  // namespace ddpm::diffusion
