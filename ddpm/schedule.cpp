#include "ddpm/schedule.hpp"

#include <cmath>
#include <numbers>
#include <set>

#include "tensor/error.hpp"

namespace ddpm::diffusion {

NoiseSchedule NoiseSchedule::from_betas(std::vector<double> betas, std::vector<std::int64_t> timesteps) {
  check(!betas.empty(), "NoiseSchedule", "needs at least one step");
  for (double beta : betas) check(beta > 0 && beta < 1, "NoiseSchedule", "betas must lie in (0, 1), got ", beta);
  NoiseSchedule s;
  const std::size_t T = betas.size();
  if (timesteps.empty())
    for (std::size_t t = 0; t < T; ++t) timesteps.push_back(static_cast<std::int64_t>(t));
  check(timesteps.size() == T, "NoiseSchedule", "timesteps and betas differ in length");
  s.betas = std::move(betas);
  s.timesteps = std::move(timesteps);
  auto resize = [T](std::vector<double>& v) { v.assign(T, 0.0); };
  for (auto* v : {&s.alphas_cumprod, &s.alphas_cumprod_prev, &s.sqrt_alphas_cumprod, &s.sqrt_one_minus_alphas_cumprod,
                  &s.log_one_minus_alphas_cumprod, &s.sqrt_recip_alphas_cumprod, &s.sqrt_recipm1_alphas_cumprod,
                  &s.posterior_variance, &s.posterior_log_variance_clipped, &s.posterior_mean_coef1,
                  &s.posterior_mean_coef2})
    resize(*v);
  double product = 1.0;
  for (std::size_t t = 0; t < T; ++t) {
    s.alphas_cumprod_prev[t] = product;
    product *= 1.0 - s.betas[t];
    s.alphas_cumprod[t] = product;
  }
  for (std::size_t t = 0; t < T; ++t) {
    const double abar = s.alphas_cumprod[t], abar_prev = s.alphas_cumprod_prev[t], beta = s.betas[t];
    s.sqrt_alphas_cumprod[t] = std::sqrt(abar);
    s.sqrt_one_minus_alphas_cumprod[t] = std::sqrt(1.0 - abar);
    s.log_one_minus_alphas_cumprod[t] = std::log(1.0 - abar);
    s.sqrt_recip_alphas_cumprod[t] = std::sqrt(1.0 / abar);
    s.sqrt_recipm1_alphas_cumprod[t] = std::sqrt(1.0 / abar - 1.0);
    s.posterior_variance[t] = beta * (1.0 - abar_prev) / (1.0 - abar);
    s.posterior_mean_coef1[t] = beta * std::sqrt(abar_prev) / (1.0 - abar);
    s.posterior_mean_coef2[t] = (1.0 - abar_prev) * std::sqrt(1.0 - beta) / (1.0 - abar);
  }
  // β̃_0 is 0: its log is clipped by taking β̃_1 there, as the reference code does.
  for (std::size_t t = 0; t < T; ++t)
    s.posterior_log_variance_clipped[t] = std::log(T > 1 && t == 0 ? s.posterior_variance[1] : s.posterior_variance[t]);
  return s;
}

NoiseSchedule make_schedule(ScheduleKind kind, std::int64_t steps) {
  check(steps >= 1, "make_schedule", "needs at least one step, got ", steps);
  const auto T = static_cast<std::size_t>(steps);
  std::vector<double> betas(T);
  auto linspace = [T](double start, double end, std::size_t i) {
    return T == 1 ? start : start + (end - start) * static_cast<double>(i) / static_cast<double>(T - 1);
  };
  const double scale = 1000.0 / static_cast<double>(steps);
  switch (kind) {
    case ScheduleKind::Linear:
      for (std::size_t i = 0; i < T; ++i) betas[i] = linspace(scale * 1e-4, scale * 0.02, i);
      break;
    case ScheduleKind::Cosine: {
      auto f = [steps](double t) {
        return std::pow(std::cos((t / static_cast<double>(steps) + 0.008) / 1.008 * std::numbers::pi / 2.0), 2.0);
      };
      for (std::size_t i = 0; i < T; ++i) betas[i] = std::min(1.0 - f(static_cast<double>(i + 1)) / f(static_cast<double>(i)), 0.999);
      break;
    }
    case ScheduleKind::Quadratic:
      for (std::size_t i = 0; i < T; ++i) betas[i] = std::pow(linspace(std::sqrt(scale * 1e-4), std::sqrt(scale * 0.02), i), 2.0);
      break;
    case ScheduleKind::Sigmoid:
      for (std::size_t i = 0; i < T; ++i)
        betas[i] = 1.0 / (1.0 + std::exp(-linspace(-6.0, 6.0, i))) * (scale * 0.02 - scale * 1e-4) + scale * 1e-4;
      break;
  }
  for (double& beta : betas) check(beta < 1, "make_schedule", "T = ", steps, " is too small for the ", schedule_kind_name(kind),
                                   " schedule (a beta reaches 1)");
  return NoiseSchedule::from_betas(std::move(betas));
}

NoiseSchedule respace(const NoiseSchedule& schedule, std::int64_t count) {
  const std::int64_t T = schedule.size();
  check(count >= 1 && count <= T, "respace", "needs 1 <= steps <= ", T, ", got ", count);
  // np.linspace(0, T - 1, count) rounded half to even (Python's round), as the reference.
  std::set<std::int64_t> kept;
  for (std::int64_t i = 0; i < count; ++i)
    kept.insert(count == 1 ? 0 : static_cast<std::int64_t>(std::nearbyint(static_cast<double>(i) * static_cast<double>(T - 1) / static_cast<double>(count - 1))));
  std::vector<double> betas;
  std::vector<std::int64_t> timesteps;
  double previous = 1.0;
  for (std::int64_t t : kept) {
    betas.push_back(1.0 - schedule.alphas_cumprod[t] / previous);
    previous = schedule.alphas_cumprod[t];
    timesteps.push_back(schedule.timesteps[t]);
  }
  return NoiseSchedule::from_betas(std::move(betas), std::move(timesteps));
}

}  // namespace ddpm::diffusion
