#include "ddpm/prediction.hpp"

#include <cmath>

#include "autograd/functions.hpp"
#include "ddpm/diffusion.hpp"

namespace ddpm::diffusion {
Variable predicted_x0(const NoiseSchedule& schedule, Prediction prediction, const Variable& output, const Tensor& xt,
                      const Tensor& steps) {
  check(output.shape() == xt.shape(), "predicted_x0", "the prediction ", shape_string(output.shape()), " and x_t ",
        shape_string(xt.shape()), " differ");
  auto coefficient = [&](const std::vector<double>& table) { return Variable(per_image(table, steps, xt.dtype())); };
  const Variable x(xt);
  switch (prediction) {
    case Prediction::Epsilon:  // x0 = sqrt(1/ᾱ) x_t - sqrt(1/ᾱ - 1) ε
      return sub(mul(coefficient(schedule.sqrt_recip_alphas_cumprod), x), mul(coefficient(schedule.sqrt_recipm1_alphas_cumprod), output));
    case Prediction::X0:
      return output;
    case Prediction::Velocity:  // x0 = sqrt(ᾱ) x_t - sqrt(1 - ᾱ) v
      return sub(mul(coefficient(schedule.sqrt_alphas_cumprod), x), mul(coefficient(schedule.sqrt_one_minus_alphas_cumprod), output));
  }
  throw TensorError("predicted_x0: unknown prediction");
}

Tensor prediction_target(const NoiseSchedule& schedule, Prediction prediction, const Tensor& x0, const Tensor& noise,
                         const Tensor& steps) {
  check(x0.shape() == noise.shape(), "prediction_target", "x0 ", shape_string(x0.shape()), " and noise ",
        shape_string(noise.shape()), " differ");
  switch (prediction) {
    case Prediction::Epsilon:
      return noise;
    case Prediction::X0:
      return x0;
    case Prediction::Velocity:
      return v_from(schedule, x0, steps, noise);
  }
  throw TensorError("prediction_target: unknown prediction");
}

}  // namespace ddpm::diffusion
