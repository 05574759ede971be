#pragma once
// One training step of the U-Net, owned by the library so that `ddpm train`, the
// benchmarks and the tests run the same step: the batch's random draws (timesteps, noise,
// null labels, dropout masks), forward, loss, backward, gradient clipping, Adam and the
// EMA. Every draw is a function of (seed, step, image's index in the global batch), never
// of a thread, a micro-batch or a process. The batch may run as M micro-batches (gradient
// accumulation) and over N processes: their gradients are summed in the fixed tree of
// ddpm/gradient_sum.hpp, so N does not change a bit; M changes only float rounding (the
// kernels sum a micro-batch's images in one reduction).
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "ddpm/process_group.hpp"
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
  std::int64_t micro_batches = 1;  // the batch runs as this many forward/backward passes
};

// What a step measured, for logs: the whole batch's mean loss and its parts, the gradient
// norm before clipping, the learning rate used, and per image its timestep and loss (the
// same on every process).
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
  // The model, optimizer and EMA are the caller's (they are checkpointed with it). With a
  // process group of N > 1, every process constructs its Trainer from the same state and
  // calls step() with the same global batch; each runs its M / N micro-batches.
  Trainer(nn::UNet& model, nn::Adam& optimizer, nn::ExponentialMovingAverage& ema, const NoiseSchedule& schedule,
          TrainerSettings settings, ProcessGroup* processes = nullptr);

  // Step `step` (0-based, the run's global count) on the global batch: images x0 [B, C, H, W]
  // in [-1, 1] with labels [B] int64 (undefined for unconditional models). B must be a
  // multiple of the micro-batch count (checked).
  StepStatistics step(std::int64_t step, const Tensor& x0, const Tensor& labels);

 private:
  nn::UNet& model_;
  nn::Adam& optimizer_;
  nn::ExponentialMovingAverage& ema_;
  const NoiseSchedule& schedule_;
  TrainerSettings settings_;
  nn::NamedParameters parameters_;
  SingleProcess single_process_;
  ProcessGroup& processes_;
};

}  // namespace ddpm::diffusion
