#pragma once
// Noise schedules and everything derived from them, in float64 (cast to float32 only
// where applied), named as in Ho et al.'s and improved DDPM's reference code.
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/name_table.hpp"

namespace ddpm::diffusion {

enum class ScheduleKind { Linear, Cosine, Quadratic, Sigmoid };
inline constexpr NameTable<ScheduleKind, 4> schedule_kind_names = {
    {{ScheduleKind::Linear, "linear"}, {ScheduleKind::Cosine, "cosine"}, {ScheduleKind::Quadratic, "quadratic"},
     {ScheduleKind::Sigmoid, "sigmoid"}}};
inline ScheduleKind parse_schedule_kind(const std::string& name) {
  return parse_name(schedule_kind_names, name, "noise schedule");
}
inline std::string schedule_kind_name(ScheduleKind kind) { return name_of(schedule_kind_names, kind); }

struct NoiseSchedule {
  std::vector<double> betas;
  // The original timestep each step stands for: 0..T-1, or a subset after respacing; the
  // model is always called with these.
  std::vector<std::int64_t> timesteps;

  std::vector<double> alphas_cumprod, alphas_cumprod_prev;
  std::vector<double> sqrt_alphas_cumprod, sqrt_one_minus_alphas_cumprod, log_one_minus_alphas_cumprod;
  std::vector<double> sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod;
  std::vector<double> posterior_variance;              // β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t)
  std::vector<double> posterior_log_variance_clipped;  // log β̃_t, index 0 takes β̃_1
  std::vector<double> posterior_mean_coef1;            // of x0
  std::vector<double> posterior_mean_coef2;            // of x_t

  std::int64_t size() const { return static_cast<std::int64_t>(betas.size()); }

  // Builds every derived quantity from betas (each in (0, 1)).
  static NoiseSchedule from_betas(std::vector<double> betas, std::vector<std::int64_t> timesteps = {});
};

// Linear: Ho et al.'s 1e-4 .. 0.02 for T = 1000, scaled by 1000/T for other T (improved
// DDPM's T-invariant form). Cosine: Nichol & Dhariwal, s = 0.008, betas clipped at 0.999.
// Quadratic: squares of a linspace of square roots. Sigmoid: sigmoid(linspace(-6, 6)).
NoiseSchedule make_schedule(ScheduleKind kind, std::int64_t steps);

// The schedule restricted to `count` evenly spaced timesteps (Nichol & Dhariwal's
// respacing): betas 1 - ᾱ_s / ᾱ_prev over the kept steps, timesteps remembering the
// original indices.
NoiseSchedule respace(const NoiseSchedule& schedule, std::int64_t count);

}  // namespace ddpm::diffusion
