// `ddpm train`: training of the U-Net (L_simple, the bound or the hybrid loss) with Adam, clipping, EMA, checkpoints,
// sample grids, a CSV log, a loss plot, progress, Ctrl-C handling and exact resume.
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "ddpm/diffusion.hpp"
#include "ddpm/conditioning.hpp"
#include "ddpm/sampler.hpp"
#include "ddpm/training_loss.hpp"
#include "tensor/tensor_library.hpp"
#include "tools/checkpoint.hpp"
#include "tools/commands.hpp"
#include "tools/dataset.hpp"
#include "tools/image_grid.hpp"
#include "tools/loss_plot.hpp"

namespace ddpm::tools {
namespace {

std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int) { stop_requested = true; }

// Streams of the counter-based RNG, one per purpose, all functions of (seed, step).
std::uint64_t stream(std::uint64_t seed, std::uint64_t purpose) { return seed * 8 + purpose; }

std::string exact(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(seconds);
  char text[32];
  if (total >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", total / 3600, total / 60 % 60);
  else std::snprintf(text, sizeof text, "%lldm%02llds", total / 60, total % 60);
  return text;
}

}  // namespace

int run_train(const TrainOptions& requested) {
  TrainOptions options = requested;
  namespace fs = std::filesystem;
  set_num_threads(options.threads);
  std::error_code error;
  fs::create_directories(options.out, error);
  if (error || !fs::is_directory(options.out))
    throw std::runtime_error("--out " + options.out + ": cannot create the output directory: " + error.message());
  const std::string checkpoint_path = (fs::path(options.out) / "checkpoint.safetensors").string();
  {  // Fail now, not after an hour of training, if the directory is not writable.
    const std::string probe = (fs::path(options.out) / ".write-test").string();
    std::ofstream test(probe);
    if (!test) throw std::runtime_error("--out " + options.out + ": directory is not writable");
    test.close();
    fs::remove(probe, error);
  }

  std::optional<Checkpoint> resumed;
  if (options.resume) {
    if (!fs::exists(checkpoint_path)) throw std::runtime_error("--resume: no checkpoint at " + checkpoint_path);
    resumed = Checkpoint::read(checkpoint_path);
    options.model = resumed->config();
    options.schedule = resumed->meta("schedule");
    options.timesteps = std::stoll(resumed->meta("timesteps"));
    options.seed = std::stoull(resumed->meta("seed"));
    options.batch = std::stoll(resumed->meta("batch"));
    if (!options.data_given) options.data = resumed->meta("data");
    options.learning_rate = std::stod(resumed->meta("lr"));
    options.class_conditional = options.model.num_classes > 0;
    options.loss = resumed->meta("loss");
  }
  diffusion::TrainingLossOptions loss_options;
  loss_options.type = diffusion::parse_loss_type(options.loss);
  // The hybrid loss exists to train the variance: it implies the learned-variance output.
  if (loss_options.type == diffusion::LossType::Hybrid && !resumed) options.model.learn_sigma = true;

  const Dataset data = load_dataset(options.data);
  if (options.class_conditional && data.labels.empty())
    throw std::runtime_error("--class-cond needs labels, and " + options.data + " has none");
  if (data.size != options.model.image_size || data.channels != options.model.in_channels) {
    if (resumed) throw std::runtime_error("data images are " + std::to_string(data.size) + "x" + std::to_string(data.size) +
                                          " but the checkpoint's model expects " + std::to_string(options.model.image_size));
    options.model.image_size = data.size;
    options.model.in_channels = data.channels;
  }
  if (options.class_conditional && !resumed) options.model.num_classes = data.classes;
  options.model.validate();
  if (options.batch < 1) throw std::runtime_error("--batch must be >= 1");

  Generator init(stream(options.seed, 0));
  nn::UNet model(options.model, init);
  const auto parameters = model.named_parameters();
  nn::Adam adam(parameters, options.learning_rate);
  nn::ExponentialMovingAverage ema(parameters, options.ema_decay);
  std::int64_t start = 0;
  if (resumed) {
    model.load_state_dict(resumed->model_tensors(model));
    adam.load_state_tensors(resumed->tensors, "optim.", std::stoll(resumed->meta("optim.step")));
    ema.load_state_tensors(resumed->tensors, "ema.", std::stoll(resumed->meta("ema.n")));
    start = resumed->step();
  }
  const diffusion::NoiseSchedule schedule =
      diffusion::make_schedule(diffusion::parse_schedule_kind(options.schedule), options.timesteps);
  const nn::Schedule lr_schedule = nn::parse_schedule(options.lr_schedule);

  std::map<std::string, std::string> run_metadata = {
      {"schedule", options.schedule}, {"timesteps", std::to_string(options.timesteps)},
      {"seed", std::to_string(options.seed)}, {"batch", std::to_string(options.batch)},
      {"data", options.data}, {"lr", exact(options.learning_rate)}, {"loss", options.loss}};
  auto save = [&](std::int64_t step) {
    auto metadata = run_metadata;
    metadata["step"] = std::to_string(step);
    write_checkpoint(checkpoint_path, model, adam, ema, metadata);
  };

  const std::string log_path = (fs::path(options.out) / "log.csv").string();
  std::ofstream log(log_path, start > 0 ? std::ios::app : std::ios::trunc);
  if (!log) throw std::runtime_error(log_path + ": cannot open for writing");
  if (start == 0) log << "step,loss,lr,grad_norm,seconds,loss_q0,loss_q1,loss_q2,loss_q3,mse,vb\n";
  LossHistory history = start > 0 ? LossHistory::from_csv(log_path) : LossHistory{};

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  if (!options.quiet)
    std::fprintf(stderr, "training %lld parameters on %lld images of %lldx%lld, steps %lld..%lld, batch %lld, %d threads\n",
                 static_cast<long long>(model.parameter_count()), static_cast<long long>(data.count),
                 static_cast<long long>(data.size), static_cast<long long>(data.size), static_cast<long long>(start),
                 static_cast<long long>(options.steps), static_cast<long long>(options.batch), num_threads());
  const auto started = std::chrono::steady_clock::now();
  double smoothed = 0, interval_loss = 0, interval_mse = 0, interval_bound = 0, last_norm = 0;
  std::int64_t interval_count = 0;
  double quartile_loss[4] = {}, quartile_count[4] = {};
  const std::int64_t per_image = options.model.in_channels * options.model.image_size * options.model.image_size;
  std::int64_t step = start;
  for (; step < options.steps && !stop_requested; ++step) {
    // Everything random is a function of (seed, step): a resumed run draws the same.
    const auto indices = batch_indices(data.count, stream(options.seed, 1), step, options.batch);
    const Tensor x0 = data.batch(indices);
    std::vector<std::int64_t> steps_vector;
    for (std::int64_t j = 0; j < options.batch; ++j)
      steps_vector.push_back(std::min<std::int64_t>(options.timesteps - 1,
          static_cast<std::int64_t>(uniform_at(stream(options.seed, 2), 0, static_cast<std::uint64_t>(step * options.batch + j)) * options.timesteps)));
    const Tensor steps = Tensor::from_vector(steps_vector, {options.batch});
    Generator noise_generator(stream(options.seed, 3));
    noise_generator.set_state(stream(options.seed, 3), static_cast<std::uint64_t>(step * options.batch * per_image));
    const Tensor noise = randn(x0.shape(), noise_generator);
    Tensor labels;
    if (options.class_conditional) {
      // The null label is the row after the classes.
      labels = diffusion::drop_labels(data.batch_labels(indices), options.label_dropout, options.model.num_classes,
                                      stream(options.seed, 4), static_cast<std::uint64_t>(step * options.batch));
    }
    Generator dropout(stream(options.seed, 5));
    dropout.set_state(stream(options.seed, 5), static_cast<std::uint64_t>(step) << 32);

    const Tensor xt = diffusion::q_sample(schedule, x0, steps, noise);
    adam.learning_rate = nn::scheduled_learning_rate(lr_schedule, options.learning_rate, step, options.warmup, options.steps);
    adam.zero_grad();
    const Variable output = model.forward(Variable(xt), diffusion::model_timesteps(schedule, steps), labels, dropout);
    const diffusion::TrainingLoss loss = diffusion::training_loss(schedule, output, x0, xt, steps, noise, loss_options);
    Variable(loss.loss).backward();
    last_norm = nn::clip_gradient_norm(parameters, options.clip);
    adam.step();
    ema.update();

    const double value = loss.loss.value().item();
    if (!std::isfinite(value)) {
      save(step);
      throw std::runtime_error("loss became " + std::to_string(value) + " at step " + std::to_string(step) +
                               "; checkpoint of the state before it saved (try a lower --lr)");
    }
    smoothed = step == start ? value : 0.98 * smoothed + 0.02 * value;
    interval_loss += value;
    ++interval_count;
    // Per-quartile loss of the timesteps (as improved-diffusion logs it).
    const auto losses = loss.per_image.to_vector<double>();
    interval_mse += mean(loss.mse).item();
    if (loss.bound.defined()) interval_bound += mean(loss.bound).item();
    for (std::int64_t j = 0; j < options.batch; ++j) {
      const int quartile = static_cast<int>(4 * steps_vector[static_cast<std::size_t>(j)] / options.timesteps);
      quartile_loss[quartile] += losses[static_cast<std::size_t>(j)];
      quartile_count[quartile] += 1;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double rate = static_cast<double>(step + 1 - start) / std::max(elapsed, 1e-9);
    if (!options.quiet)
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.2f steps/s  %.0f img/s  ETA %s   ",
                   static_cast<long long>(step + 1), static_cast<long long>(options.steps), smoothed, rate,
                   rate * static_cast<double>(options.batch),
                   format_duration(static_cast<double>(options.steps - step - 1) / rate).c_str());
    if ((step + 1) % options.log_every == 0 || step + 1 == options.steps) {
      log << step + 1 << ',' << interval_loss / interval_count << ',' << adam.learning_rate << ',' << last_norm << ',' << elapsed;
      for (int q = 0; q < 4; ++q) {
        log << ',';
        if (quartile_count[q] > 0) log << quartile_loss[q] / quartile_count[q];
        quartile_loss[q] = quartile_count[q] = 0;
      }
      log << ',' << interval_mse / interval_count << ',';
      if (loss.bound.defined()) log << interval_bound / interval_count;
      log << '\n' << std::flush;
      history.add(step + 1, interval_loss / interval_count);
      write_loss_plot((fs::path(options.out) / "loss.png").string(), history);
      interval_loss = interval_mse = interval_bound = 0;
      interval_count = 0;
    }
    if (options.checkpoint_every > 0 && (step + 1) % options.checkpoint_every == 0) save(step + 1);
    if (options.sample_every > 0 && (step + 1) % options.sample_every == 0) {
      ema.swap();
      model.eval();
      Generator unused(0);
      diffusion::SamplerOptions sampler;
      sampler.steps = options.sample_steps;
      sampler.ddim = true;
      sampler.seed = options.seed;
      const auto denoiser = [&](const Tensor& x, const Tensor& t, const Tensor& y) {
        NoGrad no_grad;
        return model.forward(Variable(x), t, y, unused).value();
      };
      const Tensor images = diffusion::sample(schedule, denoiser, {options.sample_count, options.model.in_channels,
                                              options.model.image_size, options.model.image_size}, sampler).images;
      char name[64];
      std::snprintf(name, sizeof name, "samples-%07lld.png", static_cast<long long>(step + 1));
      write_png((fs::path(options.out) / name).string(), image_grid(images));
      model.train();
      ema.swap();
    }
  }
  save(step);
  if (!options.quiet) std::fprintf(stderr, "\n");
  if (stop_requested) {
    std::fprintf(stderr, "interrupted: checkpoint at step %lld saved to %s; continue with --resume\n",
                 static_cast<long long>(step), checkpoint_path.c_str());
    return 0;
  }
  std::fprintf(stderr, "done: %lld steps, checkpoint %s, log %s\n", static_cast<long long>(step), checkpoint_path.c_str(),
               log_path.c_str());
  return 0;
}

}  // namespace ddpm::tools
