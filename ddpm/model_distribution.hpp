#pragma once
// p_θ(x_{t-1} | x_t): the Gaussian the network's output implies, shared by the ancestral
// sampler, the variational-bound losses and the bits/dim evaluator. Written on Variables
// so that training gets gradients; sampling and evaluation pass constants (no graph).
#include <string>

#include "autograd/variable.hpp"
#include "ddpm/prediction.hpp"
#include "ddpm/schedule.hpp"

namespace ddpm::diffusion {

// The variance of p_θ: σ² = β_t ("large", index 0 takes β̃_1 as the reference code does),
// σ² = β̃_t ("small", clipped at index 0), or learned: the output's second half v in
// [-1, 1] interpolates log β_t (v = 1) and log β̃_t (v = -1) (improved DDPM, eq. 15).
enum class Variance { FixedLarge, FixedSmall, Learned };
inline constexpr NameTable<Variance, 3> variance_names = {
    {{Variance::FixedLarge, "large"}, {Variance::FixedSmall, "small"}, {Variance::Learned, "learned"}}};
inline Variance parse_variance(const std::string& name) { return parse_name(variance_names, name, "variance"); }
inline std::string variance_name(Variance variance) { return name_of(variance_names, variance); }

// The network's output [B, C or 2C, H, W] for data of `data_shape` [B, C, H, W], split into
// the prediction (ε, x0 or v: see prediction.hpp) and, with 2C channels, the variance half
// (else undefined). Checks
// the shapes, and that a learned variance has its half; `caller` names the error.
struct ModelOutput {
  Variable prediction, variance_half;
};
ModelOutput split_model_output(const Variable& output, const Shape& data_shape, Variance variance, const char* caller);

struct ModelDistribution {
  Variable mean;           // [B, C, H, W]
  Variable log_variance;   // [B, 1, 1, 1] for fixed variances, [B, C, H, W] when learned
  Variable predicted_x0;   // [B, C, H, W], clipped to [-1, 1] when asked
};

// prediction [B, C, H, W]: the network's ε, x0 or v (as `kind` says); variance_output
// [B, C, H, W]: the variance half of the output (only read for Variance::Learned); xt
// [B, C, H, W]; steps int64 [B] (indices into `schedule`). Constants take xt's dtype.
ModelDistribution model_distribution(const NoiseSchedule& schedule, const Variable& prediction, const Variable& variance_output,
                                     const Tensor& xt, const Tensor& steps, Variance variance, bool clip_x0,
                                     Prediction kind = Prediction::Epsilon);

}  // namespace ddpm::diffusion
