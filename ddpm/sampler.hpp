#pragma once
// Samplers: ancestral DDPM (σ² = β "fixedlarge", σ² = β̃ "fixedsmall", or learned) and DDIM
// with η, on the full schedule or a respaced subset, with classifier-free guidance.
// Noise is keyed by (seed, step, image index, pixel), so the same seed gives the same
// images whatever the batch split or thread count.
#include <functional>
#include <vector>

#include "ddpm/model_distribution.hpp"
#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

// The network as a function: x_t [B, C, H, W], model timesteps [B] and labels [B] (or
// undefined) -> output [B, C, H, W] (the prediction: ε, x0 or v) or [B, 2C, H, W] (the
// prediction, then the variance half for a learned variance).
using Denoiser = std::function<Tensor(const Tensor& x, const Tensor& timesteps, const Tensor& labels)>;

struct SamplerOptions {
  std::int64_t steps = 0;          // 0: every step of the schedule; else respaced to this many
  bool ddim = false;
  double eta = 0.0;                // DDIM only: 0 is deterministic
  Variance variance = Variance::FixedLarge;
  Prediction prediction = Prediction::Epsilon;  // what the network's output is (prediction.hpp)
  bool clip_x0 = true;             // clip the predicted x0 to [-1, 1]
  double guidance = 0.0;           // classifier-free guidance weight w: (1+w) ε(y) - w ε(∅)
  Tensor labels;                   // int64 [B] or undefined
  std::uint64_t seed = 0;
  std::int64_t first_image = 0;    // global index of image 0 of this batch (for batch splits)
  std::int64_t record_every = 0;   // > 0: record x_t and predicted x0 every so many steps
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

struct SampleResult {
  Tensor images;                      // [B, C, H, W], in [-1, 1] when clipping
  std::vector<Tensor> trajectory;     // x_t, from noise towards the image
  std::vector<Tensor> predicted_x0;   // the matching x0 predictions
};

// shape: [B, C, H, W] of the images to draw; `channels` of the data is shape[1].
SampleResult sample(const NoiseSchedule& schedule, const Denoiser& denoiser, const Shape& shape,
                    const SamplerOptions& options);

// The noise of step `step` for a batch starting at image `first_image`: N(0, 1), keyed as
// described above.
Tensor keyed_noise(std::uint64_t seed, std::int64_t step, std::int64_t first_image, const Shape& shape);

}  // namespace ddpm::diffusion
