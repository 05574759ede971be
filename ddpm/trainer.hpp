#pragma once
// One training step of the U-Net, owned by the library so that `ddpm train`, the
// benchmarks and the tests run the same step: the batch's random draws (timesteps, noise,
// null labels, dropout masks), forward, loss, backward, gradient clipping, Adam and the
// EMA. Every draw is a function of (seed, step, position in the batch), never of a thread.
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "ddpm/schedule.hpp"
#include "ddpm/training_loss.hpp"
#include "nn/optimizer.hpp"
#include "nn/training.hpp"
#include "nn/unet.hpp"

namespace ddpm::diffusion {

// The counter-based random streams of a run, one per purpose. Their numbers are part of
// the checkpoint format's promise (a resumed run draws the same): never renumber them.
enum class RandomStream : std::uint64_t {
  Initialisation = 0, DataOrder = 1, Timesteps = 2, Noise = 3, LabelDropout = 4, Dropout = 5
};
std::uint64_t random_stream(std::uint64_t seed, RandomStream purpose);

struct TrainerSettings {
  std::uint64_t seed = 0;
  TrainingLossOptions loss;
  nn::LearningRateSchedule learning_rate_schedule = nn::LearningRateSchedule::Constant;
  double learning_rate = 2e-4;
  std::int64_t warmup_steps = 0, total_steps = 1;
  double clip = 1.0;           // global gradient-norm limit
  double label_dropout = 0.1;  // probability of the null label (class-conditional models)
};

// What a step measured, for logs: the batch's mean loss and its parts, the gradient norm
// before clipping, the learning rate used, and per image its timestep and loss.
struct StepStatistics {
  double loss = 0, mse = 0, bound = 0;  // bound: 0 for L_simple
  bool has_bound = false;
  double gradient_norm = 0, learning_rate = 0;
  std::vector<std::int64_t> timesteps;
  std::vector<double> per_image_loss;
};

// Thrown by Trainer::step when the loss or the gradient norm is not finite, before any
// parameter, moment or EMA value has changed: the state is the one before the step.
class NonFiniteStep : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Trainer {
 public:
  // The model, optimizer and EMA are the caller's (they are checkpointed with it).
  Trainer(nn::UNet& model, nn::Adam& optimizer, nn::ExponentialMovingAverage& ema, const NoiseSchedule& schedule,
          TrainerSettings settings);

  // Step `step` (0-based, the run's global count) on images x0 [B, C, H, W] in [-1, 1] with
  // labels [B] int64 (undefined for unconditional models).
  StepStatistics step(std::int64_t step, const Tensor& x0, const Tensor& labels);

 private:
  nn::UNet& model_;
  nn::Adam& optimizer_;
  nn::ExponentialMovingAverage& ema_;
  const NoiseSchedule& schedule_;
  TrainerSettings settings_;
  nn::NamedParameters parameters_;
};

}  // namespace ddpm::diffusion
