#include "ddpm/losses.hpp"

#include <cmath>
#include <numbers>

#include "autograd/functions.hpp"
#include "ddpm/diffusion.hpp"
#include "tensor/elementwise.hpp"

namespace ddpm::diffusion {

Variable simple_loss(const Variable& predicted_noise, const Tensor& noise) {
  check(predicted_noise.shape() == noise.shape(), "simple_loss", "prediction ", shape_string(predicted_noise.shape()),
        " and noise ", shape_string(noise.shape()), " differ");
  return mean(square(sub(predicted_noise, Variable(noise))));
}

Variable normal_kl(const Variable& mean1, const Variable& log_variance1, const Variable& mean2, const Variable& log_variance2) {
  return mul(add(add(add(sub(log_variance2, log_variance1), -1.0), exp(sub(log_variance1, log_variance2))),
                 mul(square(sub(mean1, mean2)), exp(neg(log_variance2)))),
             0.5);
}

Tensor normal_kl(const Tensor& mean1, const Tensor& log_variance1, const Tensor& mean2, const Tensor& log_variance2) {
  return normal_kl(Variable(mean1), Variable(log_variance1), Variable(mean2), Variable(log_variance2)).value();
}

Variable approx_standard_normal_cdf(const Variable& x) {
  const double c = std::sqrt(2.0 / std::numbers::pi);
  return mul(add(tanh(mul(add(x, mul(pow(x, 3.0), 0.044715)), c)), 1.0), 0.5);
}

Tensor approx_standard_normal_cdf(const Tensor& x) { return approx_standard_normal_cdf(Variable(x)).value(); }

Variable discretized_gaussian_log_likelihood(const Tensor& x, const Variable& mean, const Variable& log_variance) {
  const Variable centered = sub(Variable(x), mean);
  const Variable inverse_std = exp(mul(log_variance, -0.5));
  const Variable cdf_plus = approx_standard_normal_cdf(mul(inverse_std, add(centered, 1.0 / 255.0)));
  const Variable cdf_min = approx_standard_normal_cdf(mul(inverse_std, add(centered, -1.0 / 255.0)));
  // The lower edge bin is (-inf, -1 + 1/255], the upper one [1 - 1/255, inf).
  const Variable log_cdf_plus = log(maximum(cdf_plus, 1e-12));
  const Variable log_one_minus_cdf_min = log(maximum(sub(1.0, cdf_min), 1e-12));
  const Variable log_cdf_delta = log(maximum(sub(cdf_plus, cdf_min), 1e-12));
  return where(lt(x, -0.999), log_cdf_plus, where(gt(x, 0.999), log_one_minus_cdf_min, log_cdf_delta));
}

Tensor discretized_gaussian_log_likelihood(const Tensor& x, const Tensor& mean, const Tensor& log_variance) {
  return discretized_gaussian_log_likelihood(x, Variable(mean), Variable(log_variance)).value();
}

Variable variational_bound_term(const NoiseSchedule& schedule, const ModelDistribution& model, const Tensor& x0,
                                const Tensor& xt, const Tensor& steps) {
  check(x0.rank() == 4 && x0.shape() == xt.shape() && model.mean.shape() == x0.shape(), "variational_bound_term",
        "x0 ", shape_string(x0.shape()), ", x_t ", shape_string(xt.shape()), " and the model mean ",
        shape_string(model.mean.shape()), " must be one [B, C, H, W] shape");
  const double bits = 1.0 / std::log(2.0);
  auto per_image_bits = [&](const Variable& values) { return mul(mean(values, {1, 2, 3}), bits); };
  const Gaussian truth = q_posterior(schedule, x0, xt, steps);
  const Variable kl = per_image_bits(normal_kl(Variable(truth.mean), Variable(truth.log_variance), model.mean, model.log_variance));
  const Variable decoder = per_image_bits(neg(discretized_gaussian_log_likelihood(x0, model.mean, model.log_variance)));
  return where(eq(steps.to(DType::Float64), 0.0), decoder, kl);
}

}  // namespace ddpm::diffusion
