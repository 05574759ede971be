#include "ddpm/losses.hpp"

#include <cmath>
#include <numbers>

#include "autograd/functions.hpp"
#include "tensor/elementwise.hpp"

namespace ddpm::diffusion {

Variable simple_loss(const Variable& predicted_noise, const Tensor& noise) {
  check(predicted_noise.shape() == noise.shape(), "simple_loss", "prediction ", shape_string(predicted_noise.shape()),
        " and noise ", shape_string(noise.shape()), " differ");
  return mean(square(sub(predicted_noise, Variable(noise))));
}

Tensor normal_kl(const Tensor& mean1, const Tensor& log_variance1, const Tensor& mean2, const Tensor& log_variance2) {
  const Tensor difference = sub(mean1, mean2);
  return mul(add(add(sub(sub(log_variance2, log_variance1), 1.0), exp(sub(log_variance1, log_variance2))),
                 mul(square(difference), exp(neg(log_variance2)))),
             0.5);
}

Tensor approx_standard_normal_cdf(const Tensor& x) {
  const double c = std::sqrt(2.0 / std::numbers::pi);
  return mul(add(tanh(mul(add(x, mul(pow(x, 3.0), 0.044715)), c)), 1.0), 0.5);
}

Tensor discretized_gaussian_log_likelihood(const Tensor& x, const Tensor& mean, const Tensor& log_variance) {
  const Tensor centered = sub(x, mean);
  const Tensor inverse_std = exp(mul(log_variance, -0.5));
  const Tensor cdf_plus = approx_standard_normal_cdf(mul(inverse_std, add(centered, 1.0 / 255.0)));
  const Tensor cdf_min = approx_standard_normal_cdf(mul(inverse_std, sub(centered, 1.0 / 255.0)));
  const Tensor log_cdf_plus = log(maximum(cdf_plus, 1e-12));
  const Tensor log_one_minus_cdf_min = log(maximum(sub(1.0, cdf_min), 1e-12));
  const Tensor log_cdf_delta = log(maximum(sub(cdf_plus, cdf_min), 1e-12));
  return where(lt(x, -0.999), log_cdf_plus, where(gt(x, 0.999), log_one_minus_cdf_min, log_cdf_delta));
}

}  // namespace ddpm::diffusion
