#include "ddpm/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "ddpm/conditioning.hpp"
#include "ddpm/diffusion.hpp"
#include "ddpm/gradient_sum.hpp"
#include "tensor/tensor_library.hpp"

namespace ddpm::diffusion {

std::uint64_t random_stream(std::uint64_t seed, RandomStream purpose) {
  return seed * 8 + static_cast<std::uint64_t>(purpose);
}

Trainer::Trainer(nn::UNet& model, nn::Adam& optimizer, nn::ExponentialMovingAverage& ema,
                 const NoiseSchedule& schedule, TrainerSettings settings, ProcessGroup* processes)
    : model_(model), optimizer_(optimizer), ema_(ema), schedule_(schedule), settings_(std::move(settings)),
      parameters_(model.named_parameters()), processes_(processes ? *processes : single_process_) {
  first_micro_batch(settings_.micro_batches, processes_.size(), processes_.rank());  // checks the split
}

namespace {
// What one micro-batch's loss measured, per image, in batch order.
struct MicroBatchValues {
  std::vector<double> loss, mse, bound;
};
}  // namespace

StepStatistics Trainer::step(std::int64_t step, const Tensor& x0, const Tensor& labels) {
  const std::int64_t batch = x0.size(0), micro_batches = settings_.micro_batches;
  check(batch % micro_batches == 0, "Trainer::step", "a batch of ", batch, " images is not ", micro_batches,
        " micro-batches of equal size (--batch must be a multiple of --micro-batches)");
  const std::int64_t micro = batch / micro_batches, per_image = x0.numel() / std::max<std::int64_t>(batch, 1);
  const std::int64_t timesteps = schedule_.size();
  const auto stream = [&](RandomStream purpose) { return random_stream(settings_.seed, purpose); };
  // Each draw keyed by the image's position in the run: step · batch + j.
  StepStatistics statistics;
  for (std::int64_t j = 0; j < batch; ++j)
    statistics.timesteps.push_back(std::min<std::int64_t>(
        timesteps - 1, static_cast<std::int64_t>(uniform_at(stream(RandomStream::Timesteps), 0,
                                                            static_cast<std::uint64_t>(step * batch + j)) *
                                                 static_cast<double>(timesteps))));
  optimizer_.learning_rate = nn::scheduled_learning_rate(settings_.learning_rate_schedule, settings_.learning_rate,
                                                         step, settings_.warmup_steps, settings_.total_steps);
  const std::int64_t mine = micro_batches / processes_.size();
  const std::int64_t first_mine = first_micro_batch(micro_batches, processes_.size(), processes_.rank());
  MicroBatchSum gradient_sum(mine, odd_part(micro_batches));
  MicroBatchValues values;
  for (std::int64_t m = first_mine; m < first_mine + mine; ++m) {
    const std::int64_t first = m * micro;
    const Tensor images = x0.narrow(0, first, micro).contiguous();
    const Tensor steps = Tensor::from_vector(
        std::vector<std::int64_t>(statistics.timesteps.begin() + first, statistics.timesteps.begin() + first + micro), {micro});
    Generator noise_generator(stream(RandomStream::Noise));
    noise_generator.set_state(stream(RandomStream::Noise), static_cast<std::uint64_t>((step * batch + first) * per_image));
    const Tensor noise = randn(images.shape(), noise_generator);
    Tensor conditioning;
    if (labels.defined())  // the null label is the row after the classes
      conditioning = drop_labels(labels.narrow(0, first, micro).contiguous(), settings_.label_dropout,
                                 model_.config().num_classes, stream(RandomStream::LabelDropout),
                                 static_cast<std::uint64_t>(step * batch + first));
    Generator dropout(stream(RandomStream::Dropout));
    dropout.set_state(stream(RandomStream::Dropout), static_cast<std::uint64_t>(step) << 32);
    dropout.set_batch_window(first, batch);

    const Tensor xt = q_sample(schedule_, images, steps, noise);
    optimizer_.zero_grad();
    const Variable output = model_.forward(Variable(xt), model_timesteps(schedule_, steps), conditioning, dropout);
    const TrainingLoss loss = training_loss(schedule_, output, images, xt, steps, noise, settings_.loss);
    // Σ over the micro-batch / B: each image's loss enters the gradient with weight 1/B, as
    // in the mean over the whole batch.
    mul(sum(loss.per_image_loss), 1.0 / static_cast<double>(batch)).backward();
    Gradients gradients;
    for (const auto& [name, parameter] : parameters_) gradients.push_back(parameter.grad());
    gradient_sum.add(std::move(gradients));
    for (double v : loss.per_image.to_vector<double>()) values.loss.push_back(v);
    for (double v : loss.mse.to_vector<double>()) values.mse.push_back(v);
    if (loss.bound.defined())
      for (double v : loss.bound.to_vector<double>()) values.bound.push_back(v);
  }
  const Gradients total = sum_over_processes(processes_, gradient_sum.total());
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Variable parameter = parameters_[i].second;
    parameter.zero_grad();
    if (total[i].defined()) parameter.set_grad(total[i]);
  }
  statistics.gradient_norm = nn::clip_gradient_norm(parameters_, settings_.clip);
  // The whole batch's per-image values, in image order, on every process.
  statistics.per_image_loss = all_gather<double>(processes_, values.loss);
  const std::vector<double> mse = all_gather<double>(processes_, values.mse);
  statistics.has_bound = settings_.loss.type != LossType::Simple;
  const auto batch_mean = [&](const std::vector<double>& per_image) {  // as mean() over the float [B] tensor
    std::vector<float> floats(per_image.begin(), per_image.end());
    return mean(Tensor::from_vector(floats, {batch})).item();
  };
  statistics.loss = batch_mean(statistics.per_image_loss);
  // Checked before any parameter changes, so the state is still the one before the step.
  if (!std::isfinite(statistics.loss) || !std::isfinite(statistics.gradient_norm))
    throw NonFiniteStep(std::string(std::isfinite(statistics.loss) ? "gradient norm" : "loss") + " became " +
                        std::to_string(std::isfinite(statistics.loss) ? statistics.gradient_norm : statistics.loss) +
                        " at step " + std::to_string(step));
  optimizer_.step();
  ema_.update();

  statistics.learning_rate = optimizer_.learning_rate;
  statistics.mse = batch_mean(mse);
  if (statistics.has_bound) statistics.bound = batch_mean(all_gather<double>(processes_, values.bound));
  return statistics;
}

}  // namespace ddpm::diffusion
