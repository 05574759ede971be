#pragma once
// The full variational bound of Ho et al. per image, in bits per dimension:
//   prior   KL(q(x_T | x0) || N(0, I))
//   terms   L_{t-1} = KL(q(x_{t-1} | x_t, x0) || p_θ(x_{t-1} | x_t)) for t = 2..T
//   decoder L_0 = -log p_θ(x0 | x_1) under the discretised Gaussian
// with x_t drawn once per step and image (keyed noise, as the samplers), as improved
// DDPM's calc_bpd_loop computes it.
#include "ddpm/sampler.hpp"

namespace ddpm::diffusion {

struct BoundTerms {
  Tensor prior;    // [B]
  Tensor terms;    // [B, T]: column 0 is the decoder term L_0, column i the KL L_i
  Tensor total;    // [B]: prior + Σ terms
};

BoundTerms variational_bound(const NoiseSchedule& schedule, const Denoiser& denoiser, const Tensor& x0,
                             Variance variance, bool clip_x0, std::uint64_t seed, std::int64_t first_image = 0,
                             Prediction prediction = Prediction::Epsilon);

}  // namespace ddpm::diffusion
