#include "ddpm/diffusion.hpp"

#include "tensor/elementwise.hpp"

namespace ddpm::diffusion {

Tensor per_image(const std::vector<double>& table, const Tensor& steps, DType dtype) {
  check(steps.dtype() == DType::Int64 && steps.rank() == 1, "per_image", "steps must be int64 [B], got ",
        dtype_name(steps.dtype()), " ", shape_string(steps.shape()));
  const auto indices = steps.to_vector<std::int64_t>();
  std::vector<double> values;
  for (std::int64_t i : indices) {
    check(i >= 0 && i < static_cast<std::int64_t>(table.size()), "per_image", "step ", i, " is outside the schedule of ",
          table.size(), " steps");
    values.push_back(table[static_cast<std::size_t>(i)]);
  }
  return Tensor::from_vector(values, {static_cast<std::int64_t>(values.size()), 1, 1, 1}).to(dtype);
}

Tensor model_timesteps(const NoiseSchedule& schedule, const Tensor& steps) {
  std::vector<std::int64_t> out;
  for (std::int64_t i : steps.to_vector<std::int64_t>()) {
    check(i >= 0 && i < schedule.size(), "model_timesteps", "step ", i, " is outside the schedule");
    out.push_back(schedule.timesteps[static_cast<std::size_t>(i)]);
  }
  return Tensor::from_vector(out, {static_cast<std::int64_t>(out.size())});
}

Tensor q_sample(const NoiseSchedule& s, const Tensor& x0, const Tensor& steps, const Tensor& noise) {
  check(x0.shape() == noise.shape(), "q_sample", "x0 ", shape_string(x0.shape()), " and noise ", shape_string(noise.shape()),
        " differ");
  return add(mul(per_image(s.sqrt_alphas_cumprod, steps, x0.dtype()), x0),
             mul(per_image(s.sqrt_one_minus_alphas_cumprod, steps, x0.dtype()), noise));
}

Gaussian q_posterior(const NoiseSchedule& s, const Tensor& x0, const Tensor& xt, const Tensor& steps) {
  return {add(mul(per_image(s.posterior_mean_coef1, steps, x0.dtype()), x0),
              mul(per_image(s.posterior_mean_coef2, steps, x0.dtype()), xt)),
          per_image(s.posterior_log_variance_clipped, steps, x0.dtype())};
}

Tensor x0_from_epsilon(const NoiseSchedule& s, const Tensor& xt, const Tensor& steps, const Tensor& epsilon) {
  return sub(mul(per_image(s.sqrt_recip_alphas_cumprod, steps, xt.dtype()), xt),
             mul(per_image(s.sqrt_recipm1_alphas_cumprod, steps, xt.dtype()), epsilon));
}

Tensor epsilon_from_x0(const NoiseSchedule& s, const Tensor& xt, const Tensor& steps, const Tensor& x0) {
  return div(sub(mul(per_image(s.sqrt_recip_alphas_cumprod, steps, xt.dtype()), xt), x0),
             per_image(s.sqrt_recipm1_alphas_cumprod, steps, xt.dtype()));
}

Tensor v_from(const NoiseSchedule& s, const Tensor& x0, const Tensor& steps, const Tensor& epsilon) {
  return sub(mul(per_image(s.sqrt_alphas_cumprod, steps, x0.dtype()), epsilon),
             mul(per_image(s.sqrt_one_minus_alphas_cumprod, steps, x0.dtype()), x0));
}

Tensor x0_from_v(const NoiseSchedule& s, const Tensor& xt, const Tensor& steps, const Tensor& v) {
  return sub(mul(per_image(s.sqrt_alphas_cumprod, steps, xt.dtype()), xt),
             mul(per_image(s.sqrt_one_minus_alphas_cumprod, steps, xt.dtype()), v));
}

Tensor epsilon_from_v(const NoiseSchedule& s, const Tensor& xt, const Tensor& steps, const Tensor& v) {
  return add(mul(per_image(s.sqrt_one_minus_alphas_cumprod, steps, xt.dtype()), xt),
             mul(per_image(s.sqrt_alphas_cumprod, steps, xt.dtype()), v));
}

}  // namespace ddpm::diffusion
