#pragma once
// What the network predicts from x_t: the noise ε (Ho et al.), the clean image x0, or the
// velocity v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x0 (Salimans & Ho 2022). Each is a linear function
// of the others at fixed x_t, so every sampler and the bound work from the x0 it implies,
// and classifier-free guidance may mix the raw outputs.
//
// L_simple regresses the output on its own target. In units of the ε error, at fixed x_t:
//   |x̂0 - x0|² = (1 - ᾱ)/ᾱ · |ε̂ - ε|²   (1/SNR: x0 weights noisy steps most)
//   |v̂ - v|²   = 1/ᾱ · |ε̂ - ε|²         (1 + 1/SNR)
// so the three targets train the same optimum with different weights per timestep.
#include <string>

#include "autograd/variable.hpp"
#include "ddpm/schedule.hpp"
#include "tensor/name_table.hpp"

namespace ddpm::diffusion {

enum class Prediction { Epsilon, X0, Velocity };
inline constexpr NameTable<Prediction, 3> prediction_names = {
    {{Prediction::Epsilon, "eps"}, {Prediction::X0, "x0"}, {Prediction::Velocity, "v"}}};
inline Prediction parse_prediction(const std::string& name) { return parse_name(prediction_names, name, "prediction"); }
inline std::string prediction_name(Prediction prediction) { return name_of(prediction_names, prediction); }

// The x0 that `output` [B, C, H, W] (a prediction of kind `prediction` on xt) implies;
// steps int64 [B] index `schedule`. Differentiable in `output`.
Variable predicted_x0(const NoiseSchedule& schedule, Prediction prediction, const Variable& output, const Tensor& xt,
                      const Tensor& steps);

// What L_simple regresses the output on, for x_t = sqrt(ᾱ) x0 + sqrt(1 - ᾱ) noise.
Tensor prediction_target(const NoiseSchedule& schedule, Prediction prediction, const Tensor& x0, const Tensor& noise,
                         const Tensor& steps);

}  // namespace ddpm::diffusion
