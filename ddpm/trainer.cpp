#include "ddpm/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "ddpm/conditioning.hpp"
#include "ddpm/diffusion.hpp"
#include "tensor/tensor_library.hpp"

namespace ddpm::diffusion {

std::uint64_t random_stream(std::uint64_t seed, RandomStream purpose) {
  return seed * 8 + static_cast<std::uint64_t>(purpose);
}

Trainer::Trainer(nn::UNet& model, nn::Adam& optimizer, nn::ExponentialMovingAverage& ema,
                 const NoiseSchedule& schedule, TrainerSettings settings)
    : model_(model), optimizer_(optimizer), ema_(ema), schedule_(schedule), settings_(std::move(settings)),
      parameters_(model.named_parameters()) {}

StepStatistics Trainer::step(std::int64_t step, const Tensor& x0, const Tensor& labels) {
  const std::int64_t batch = x0.size(0), per_image = x0.numel() / std::max<std::int64_t>(batch, 1);
  const std::int64_t timesteps = schedule_.size();
  const auto stream = [&](RandomStream purpose) { return random_stream(settings_.seed, purpose); };
  // Each draw keyed by the image's position in the run: step · batch + j.
  StepStatistics statistics;
  for (std::int64_t j = 0; j < batch; ++j)
    statistics.timesteps.push_back(std::min<std::int64_t>(
        timesteps - 1, static_cast<std::int64_t>(uniform_at(stream(RandomStream::Timesteps), 0,
                                                            static_cast<std::uint64_t>(step * batch + j)) *
                                                 static_cast<double>(timesteps))));
  const Tensor steps = Tensor::from_vector(statistics.timesteps, {batch});
  Generator noise_generator(stream(RandomStream::Noise));
  noise_generator.set_state(stream(RandomStream::Noise), static_cast<std::uint64_t>(step * batch * per_image));
  const Tensor noise = randn(x0.shape(), noise_generator);
  Tensor conditioning;
  if (labels.defined())  // the null label is the row after the classes
    conditioning = drop_labels(labels, settings_.label_dropout, model_.config().num_classes,
                               stream(RandomStream::LabelDropout), static_cast<std::uint64_t>(step * batch));
  Generator dropout(stream(RandomStream::Dropout));
  dropout.set_state(stream(RandomStream::Dropout), static_cast<std::uint64_t>(step) << 32);

  const Tensor xt = q_sample(schedule_, x0, steps, noise);
  optimizer_.learning_rate = nn::scheduled_learning_rate(settings_.learning_rate_schedule, settings_.learning_rate,
                                                         step, settings_.warmup_steps, settings_.total_steps);
  optimizer_.zero_grad();
  const Variable output = model_.forward(Variable(xt), model_timesteps(schedule_, steps), conditioning, dropout);
  const TrainingLoss loss = training_loss(schedule_, output, x0, xt, steps, noise, settings_.loss);
  Variable(loss.loss).backward();
  statistics.gradient_norm = nn::clip_gradient_norm(parameters_, settings_.clip);
  statistics.loss = loss.loss.value().item();
  // Checked before any parameter changes, so the state is still the one before the step.
  if (!std::isfinite(statistics.loss) || !std::isfinite(statistics.gradient_norm))
    throw NonFiniteStep(std::string(std::isfinite(statistics.loss) ? "gradient norm" : "loss") + " became " +
                        std::to_string(std::isfinite(statistics.loss) ? statistics.gradient_norm : statistics.loss) +
                        " at step " + std::to_string(step));
  optimizer_.step();
  ema_.update();

  statistics.learning_rate = optimizer_.learning_rate;
  statistics.per_image_loss = loss.per_image.to_vector<double>();
  statistics.mse = mean(loss.mse).item();
  statistics.has_bound = loss.bound.defined();
  if (statistics.has_bound) statistics.bound = mean(loss.bound).item();
  return statistics;
}

}  // namespace ddpm::diffusion
