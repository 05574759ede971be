#include "ddpm/model_distribution.hpp"

#include <cmath>

#include "autograd/functions.hpp"
#include "ddpm/diffusion.hpp"

namespace ddpm::diffusion {

namespace {
std::vector<double> large_log_variances(const NoiseSchedule& schedule) {
  std::vector<double> values(schedule.betas.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = std::log(i == 0 && values.size() > 1 ? schedule.posterior_variance[1] : schedule.betas[i]);
  return values;
}
}  // namespace

ModelOutput split_model_output(const Variable& output, const Shape& data_shape, Variance variance, const char* caller) {
  check(data_shape.size() == 4, caller, "data must be [B, C, H, W], got ", shape_string(data_shape));
  const std::int64_t channels = data_shape[1];
  const Shape& shape = output.shape();
  check(shape.size() == 4 && shape[0] == data_shape[0] && (shape[1] == channels || shape[1] == 2 * channels) &&
            shape[2] == data_shape[2] && shape[3] == data_shape[3],
        caller, "the model returned ", shape_string(shape), " for data ", shape_string(data_shape), " (C or 2C channels)");
  const bool has_variance = shape[1] == 2 * channels;
  check(variance != Variance::Learned || has_variance, caller,
        "a learned variance needs a model with 2x output channels, got ", shape[1], " for ", channels);
  return {narrow(output, 1, 0, channels), has_variance ? narrow(output, 1, channels, channels) : Variable()};
}

ModelDistribution model_distribution(const NoiseSchedule& schedule, const Variable& prediction, const Variable& variance_output,
                                     const Tensor& xt, const Tensor& steps, Variance variance, bool clip_x0, Prediction kind) {
  check(prediction.shape() == xt.shape(), "model_distribution", "the prediction ", shape_string(prediction.shape()), " and x_t ",
        shape_string(xt.shape()), " differ");
  const DType dtype = xt.dtype();
  auto coefficient = [&](const std::vector<double>& table) { return Variable(per_image(table, steps, dtype)); };
  const Variable x = Variable(xt);

  Variable x0 = predicted_x0(schedule, kind, prediction, xt, steps);
  if (clip_x0) x0 = minimum(maximum(x0, -1.0), 1.0);
  const Variable mean = add(mul(coefficient(schedule.posterior_mean_coef1), x0), mul(coefficient(schedule.posterior_mean_coef2), x));

  Variable log_variance;
  if (variance == Variance::FixedLarge) {
    log_variance = coefficient(large_log_variances(schedule));
  } else if (variance == Variance::FixedSmall) {
    log_variance = coefficient(schedule.posterior_log_variance_clipped);
  } else {
    check(variance_output.defined() && variance_output.shape() == xt.shape(), "model_distribution",
          "a learned variance needs the output's v half shaped like x_t ", shape_string(xt.shape()));
    std::vector<double> log_betas;
    for (double beta : schedule.betas) log_betas.push_back(std::log(beta));
    const Variable fraction = mul(add(variance_output, 1.0), 0.5);
    log_variance = add(mul(fraction, coefficient(log_betas)),
                       mul(sub(1.0, fraction), coefficient(schedule.posterior_log_variance_clipped)));
  }
  return {mean, log_variance, x0};
}

}  // namespace ddpm::diffusion
