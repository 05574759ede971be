#pragma once
// The training objectives of DDPM and improved DDPM on one batch of the forward process.
//   simple: L_simple = mean (ε_θ - ε)² (Ho et al. eq. 14), or of x0 or v for models that
//           predict them, each regressed on its own target (weights in prediction.hpp)
//   vlb:    T · L_t, the per-sample estimate of the bound Σ_t L_t with t uniform
//           (improved-diffusion's RESCALED_KL), in bits/dim; the model's variance is
//           learned when its output has 2C channels, else fixed
//   hybrid: L_simple + λ · T · L_t with the mean's gradient stopped in the bound term, so
//           the bound only trains the variance (improved DDPM §3.1, λ = 0.001;
//           improved-diffusion's RESCALED_MSE); needs a learned variance
// Timesteps are drawn uniformly (no importance sampling of L_vlb).
#include <string>

#include "tensor/name_table.hpp"

#include "ddpm/model_distribution.hpp"

namespace ddpm::diffusion {

enum class LossType { Simple, VariationalBound, Hybrid };
inline constexpr NameTable<LossType, 3> loss_type_names = {
    {{LossType::Simple, "simple"}, {LossType::VariationalBound, "vlb"}, {LossType::Hybrid, "hybrid"}}};
inline LossType parse_loss_type(const std::string& name) { return parse_name(loss_type_names, name, "loss"); }
inline std::string loss_type_name(LossType type) { return name_of(loss_type_names, type); }

struct TrainingLossOptions {
  LossType type = LossType::Simple;
  Variance fixed_variance = Variance::FixedLarge;  // the variance of vlb without a learned one
  double hybrid_weight = 0.001;                     // λ
  Prediction prediction = Prediction::Epsilon;      // what the network's output is
};

struct TrainingLoss {
  Variable loss;             // scalar, mean over the batch
  Variable per_image_loss;   // [B], what the mean is of (a micro-batch's share of a larger batch's loss)
  Tensor per_image;          // [B], its value: for logging per timestep quartile
  Tensor mse, bound;         // [B] parts: mse of the prediction against its target; bound: T · L_t in bits/dim (undefined for simple)
};

// output [B, C or 2C, H, W] of the network on x_t; x0, xt, noise [B, C, H, W];
// steps int64 [B] indices into `schedule`.
TrainingLoss training_loss(const NoiseSchedule& schedule, const Variable& output, const Tensor& x0, const Tensor& xt,
                           const Tensor& steps, const Tensor& noise, const TrainingLossOptions& options);

}  // namespace ddpm::diffusion
