// `ddpm train`: training of the U-Net (L_simple, the bound or the hybrid loss) with Adam, clipping, EMA, checkpoints,
// sample grids, a CSV log, a loss plot, progress, Ctrl-C handling and exact resume.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <tuple>

#include <unistd.h>

#include "ddpm/diffusion.hpp"
#include "ddpm/gradient_sum.hpp"
#include "ddpm/conditioning.hpp"
#include "ddpm/sampler.hpp"
#include "ddpm/trainer.hpp"
#include "ddpm/training_loss.hpp"
#include "tensor/tensor_library.hpp"
#include "tools/checkpoint.hpp"
#include "tools/commands.hpp"
#include "tools/duration.hpp"
#include "tools/dataset.hpp"
#include "tools/image_grid.hpp"
#include "tools/loss_plot.hpp"
#include "tools/processes.hpp"
#include "tools/run_directory.hpp"
#include "tools/training_fid.hpp"

namespace ddpm::tools {
namespace {

std::atomic<bool> stop_requested{false};
extern "C" void request_stop(int) { stop_requested = true; }

// Streams of the counter-based RNG, one per purpose, all functions of (seed, step).
using diffusion::RandomStream;

std::string exact(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

// Options whose value is fixed by a run's first start: given with --resume, each must
// agree with the checkpoint (a different value would silently be a different run).
void check_resume_conflicts(const TrainOptions& requested, const TrainOptions& recorded) {
  const nn::UNetConfig& a = requested.model;
  const nn::UNetConfig& b = recorded.model;
  auto list = [](const std::vector<std::int64_t>& values) {
    std::string text;
    for (std::int64_t v : values) {
      if (!text.empty()) text += ',';
      text += std::to_string(v);
    }
    return text;
  };
  std::vector<std::tuple<std::string, std::string, std::string>> fixed = {
      {"--ch", std::to_string(a.ch), std::to_string(b.ch)},
      {"--ch-mult", list(a.ch_mult), list(b.ch_mult)},
      {"--num-res-blocks", std::to_string(a.num_res_blocks), std::to_string(b.num_res_blocks)},
      {"--attn", list(a.attn_resolutions), list(b.attn_resolutions)},
      {"--dropout", exact(a.dropout), exact(b.dropout)},
      {"--learn-sigma", std::to_string(a.learn_sigma), std::to_string(b.learn_sigma)},
      {"--class-cond", std::to_string(requested.class_conditional), std::to_string(recorded.class_conditional)}};
  const Metadata asked = to_metadata(requested.run), kept = to_metadata(recorded.run);
  std::string may_change = "--steps";
  for (const RunSettingField& field : run_setting_fields()) {
    if (field.may_change_on_resume) may_change += std::string(", ") + field.option;
    else fixed.emplace_back(field.option, asked.at(field.key), kept.at(field.key));
  }
  std::string conflicts;
  for (const auto& [option, value, recorded_value] : fixed)
    if (requested.given.count(option) && value != recorded_value)
      conflicts += std::string(conflicts.empty() ? "" : ", ") + option + " " + value + " (checkpoint: " + recorded_value + ")";
  if (!conflicts.empty())
    throw std::runtime_error("--resume: these options differ from the run being resumed and cannot change: " +
                             conflicts + ". Options that may change on resume: " + may_change +
                             ", --checkpoint-every, --sample-every, --sample-count, --sample-steps, --log-every, "
                             "--check-ranks-every, --threads, --quiet, and mpirun's -np (--data: images of the same size)");
}

// An upper estimate of the memory a training step takes: the activations the backward
// keeps grow with the batch and with Σ channels x pixels over the U-Net's blocks; 8 floats
// per such value (measured on the default model: 7.2 MB per image, 5.7 floats per value;
// ch 16: 3.9 MB), plus the weights, their gradients, Adam's moments and the EMA. Only to
// refuse a batch that cannot fit before the kernel's OOM killer ends the run unannounced.
double estimated_step_bytes(const nn::UNetConfig& config, std::int64_t batch) {
  double values = 0;  // per image
  std::int64_t resolution = config.image_size;
  const auto levels = static_cast<std::int64_t>(config.ch_mult.size());
  for (std::int64_t level = 0; level < levels; ++level) {
    const double channels = static_cast<double>(config.ch * config.ch_mult[static_cast<std::size_t>(level)]);
    const double area = static_cast<double>(resolution * resolution);
    // num_res_blocks down, num_res_blocks + 1 up, a resampling, attention's area x area.
    const bool attends = std::find(config.attn_resolutions.begin(), config.attn_resolutions.end(), resolution) !=
                         config.attn_resolutions.end();
    values += static_cast<double>(2 * config.num_res_blocks + 2) * channels * area +
              (attends ? static_cast<double>(2 * config.num_res_blocks + 1) * (channels * area + area * area) : 0);
    if (level + 1 < levels) resolution /= 2;
  }
  return 8.0 * 4.0 * values * static_cast<double>(batch) + 20.0 * static_cast<double>(config.parameter_count());
}

// A fingerprint of the training state (parameters, Adam's moments, EMA), to see that every
// process of an MPI run holds the same one: FNV-1a over the tensors' bytes.
std::uint64_t state_fingerprint(const nn::UNet& model, const nn::Adam& adam, const nn::ExponentialMovingAverage& ema) {
  std::uint64_t hash = 14695981039346656037ull;
  auto mix = [&](const Tensor& tensor) {
    const Tensor values = tensor.contiguous();
    const auto* bytes = static_cast<const unsigned char*>(values.raw_data());
    for (std::size_t i = 0; i < static_cast<std::size_t>(values.numel()) * element_size(values.dtype()); ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  };
  for (const auto& [name, parameter] : model.named_parameters()) mix(parameter.value());
  for (const auto& [name, tensor] : adam.state_tensors("optim.")) mix(tensor);
  for (const auto& [name, tensor] : ema.state_tensors("ema.")) mix(tensor);
  return hash;
}

void check_processes_agree(diffusion::ProcessGroup& group, const nn::UNet& model, const nn::Adam& adam,
                           const nn::ExponentialMovingAverage& ema, std::int64_t step) {
  if (group.size() == 1) return;  // nothing to compare, and the fingerprint reads the whole state
  const std::uint64_t fingerprint = state_fingerprint(model, adam, ema);
  const std::vector<std::uint64_t> all = diffusion::all_gather<std::uint64_t>(group, std::span(&fingerprint, 1));
  for (int rank = 1; rank < group.size(); ++rank)
    if (all[static_cast<std::size_t>(rank)] != all[0])
      throw std::runtime_error("the processes diverged at step " + std::to_string(step) + ": rank " + std::to_string(rank) +
                               "'s parameters, moments or EMA differ from rank 0's (a fault in the machine, the network "
                               "or ddpm itself: please report it)");
}

}  // namespace

int run_train(const TrainOptions& requested) {
  TrainOptions options = requested;
  diffusion::ProcessGroup& group = processes();
  const bool writer = group.rank() == 0;  // rank 0 alone writes files and prints progress
  if (!writer) options.quiet = true;
  set_num_threads(threads_for_this_process(options.threads));
  // Only rank 0 holds (and locks) the directory; the others only read a checkpoint to resume.
  std::optional<RunDirectory> directory;
  if (writer) directory.emplace(options.out);
  const std::string checkpoint_path = RunDirectory::checkpoint_in(options.out);
  if (writer && !options.resume && !options.overwrite && directory->holds_run())
    throw std::runtime_error("--out " + options.out + " already holds a run: --resume to continue it, --overwrite to "
                             "replace it, or another --out");

  std::optional<Checkpoint> resumed;
  if (options.resume) {
    if (!std::filesystem::exists(checkpoint_path)) throw std::runtime_error("--resume: no checkpoint at " + checkpoint_path);
    resumed = Checkpoint::read(checkpoint_path);
    options.model = resumed->config();
    options.class_conditional = options.model.num_classes > 0;
    options.run = resumed->run().settings;  // the recorded run, but for what may change:
    if (options.data_given) options.run.data = requested.run.data;
    if (options.given.count("--micro-batches")) options.run.micro_batches = requested.run.micro_batches;
    TrainOptions requested_model = requested;
    requested_model.model.image_size = options.model.image_size;  // from the data, not an option
    requested_model.model.in_channels = options.model.in_channels;
    requested_model.model.num_classes = options.model.num_classes;
    check_resume_conflicts(requested_model, options);
  }
  RunSettings& run = options.run;
  // The hybrid loss exists to train the variance: it implies the learned-variance output.
  if (run.loss == diffusion::LossType::Hybrid && !resumed) options.model.learn_sigma = true;

  const Dataset data = load_dataset(run.data);
  if (options.class_conditional && data.labels.empty())
    throw std::runtime_error("--class-cond needs labels, and " + run.data + " has none");
  if (data.size != options.model.image_size || data.channels != options.model.in_channels) {
    if (resumed) throw std::runtime_error("data images are " + std::to_string(data.size) + "x" + std::to_string(data.size) +
                                          " but the checkpoint's model expects " + std::to_string(options.model.image_size));
    options.model.image_size = data.size;
    options.model.in_channels = data.channels;
  }
  if (options.class_conditional && !resumed) options.model.num_classes = data.classes;
  options.model.validate();
  if (run.batch < 1) throw std::runtime_error("--batch must be >= 1");
  if (run.batch % run.micro_batches != 0)
    throw std::runtime_error("--batch " + std::to_string(run.batch) + " is not a multiple of --micro-batches " +
                             std::to_string(run.micro_batches) + ": every micro-batch must hold the same number of images");
  diffusion::first_micro_batch(run.micro_batches, group.size(), group.rank());  // an error names -np and M
  if (run.batch > data.count)
    throw std::runtime_error("--batch " + std::to_string(run.batch) + " is larger than the data set (" +
                             std::to_string(data.count) + " images in " + run.data +
                             "): every step would repeat images, and a batch far beyond the data is usually a typo");

  const double memory = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
  const double needed = estimated_step_bytes(options.model, run.batch / run.micro_batches);
  if (memory > 0 && needed > memory)
    throw std::runtime_error("--batch " + std::to_string(run.batch) + " in " + std::to_string(run.micro_batches) +
                             " micro-batches: a training step of this model would need about " +
                             std::to_string(static_cast<long long>(needed / (1 << 30))) + " GiB, and this machine has " +
                             std::to_string(static_cast<long long>(memory / (1 << 30))) +
                             " GiB: use a smaller --batch or more --micro-batches");

  Generator init(diffusion::random_stream(run.seed, RandomStream::Initialisation));
  nn::UNet model(options.model, init);
  const auto parameters = model.named_parameters();
  nn::Adam adam(parameters, run.learning_rate);
  nn::ExponentialMovingAverage ema(parameters, run.ema_decay);
  std::int64_t start = 0;
  if (resumed) {
    resumed->load_into(model, /*ema=*/false);
    resumed->ema_tensors();  // refuses non-finite EMA weights, naming the tensor
    const RecordedRun& recorded = resumed->run();
    adam.load_state_tensors(resumed->tensors, "optim.", recorded.optimizer_steps);
    ema.load_state_tensors(resumed->tensors, "ema.", recorded.ema_updates);
    start = recorded.step;
  }
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(run.schedule, run.timesteps);
  const Metadata run_metadata = to_metadata(run);
  // Every process checks that all hold the same state; rank 0 alone writes it.
  auto save = [&](std::int64_t step) {
    check_processes_agree(group, model, adam, ema, step);
    if (!writer) return;
    auto metadata = run_metadata;
    metadata["step"] = std::to_string(step);
    write_checkpoint(checkpoint_path, model, adam, ema, metadata);
  };

  const std::string log_path = writer ? directory->log_path() : std::string();
  std::ofstream log;
  LossHistory history;
  bool log_has_fid = true;
  if (writer) {
    if (start > 0) directory->truncate_log(start);
    log.open(log_path, start > 0 ? std::ios::app : std::ios::trunc);
    if (!log) throw std::runtime_error(log_path + ": cannot open for writing");
    if (start == 0) log << "step,loss,lr,grad_norm,seconds,loss_q0,loss_q1,loss_q2,loss_q3,mse,vb,fid,kid\n";
    if (start > 0) history = LossHistory::from_csv(log_path);
    log_has_fid = start == 0 || history.has_fid_columns;
  }
  // Loaded before the first step: a missing feature network or unsuitable data fails now.
  std::optional<TrainingFid> fid;
  if (writer && options.fid_every > 0) {
    if (!log_has_fid)
      throw std::runtime_error(log_path + " has no fid column (the run began before --fid-every existed): start a new run to log FID");
    fid.emplace(run.data, options.fid_samples, options.fid_steps, run.seed);
  }

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  if (!options.quiet)
    std::fprintf(stderr, "training %lld parameters on %lld images of %lldx%lld, steps %lld..%lld, batch %lld in %lld "
                 "micro-batches, %d processes of %d threads\n",
                 static_cast<long long>(model.parameter_count()), static_cast<long long>(data.count),
                 static_cast<long long>(data.size), static_cast<long long>(data.size), static_cast<long long>(start),
                 static_cast<long long>(options.steps), static_cast<long long>(run.batch),
                 static_cast<long long>(run.micro_batches), group.size(), num_threads());
  const auto started = std::chrono::steady_clock::now();
  double smoothed = 0, interval_loss = 0, interval_mse = 0, interval_bound = 0, last_norm = 0;
  std::int64_t interval_count = 0;
  double quartile_loss[4] = {}, quartile_count[4] = {};
  diffusion::Trainer trainer(model, adam, ema, schedule, run.trainer_settings(options.steps), &group);
  std::int64_t step = start;
  bool stopped = false;
  for (; step < options.steps; ++step) {
    // Every process stops at the same step, whichever received the signal.
    if ((stopped = diffusion::any_rank(group, stop_requested))) break;
    // Everything random is a function of (seed, step): a resumed run draws the same.
    const auto indices = batch_indices(data.count, diffusion::random_stream(run.seed, RandomStream::DataOrder), step,
                                       run.batch);
    diffusion::StepStatistics statistics;
    try {
      statistics = trainer.step(step, data.batch(indices),
                                options.class_conditional ? data.batch_labels(indices) : Tensor());
    } catch (const diffusion::NonFiniteStep& error) {
      save(step);  // the step changed nothing: this is the state before it
      throw std::runtime_error(std::string(error.what()) + "; checkpoint of the state before it saved (try a lower --lr)");
    }
    const double value = statistics.loss;
    last_norm = statistics.gradient_norm;
    smoothed = step == start ? value : 0.98 * smoothed + 0.02 * value;
    interval_loss += value;
    ++interval_count;
    // Per-quartile loss of the timesteps (as improved-diffusion logs it).
    interval_mse += statistics.mse;
    if (statistics.has_bound) interval_bound += statistics.bound;
    for (std::int64_t j = 0; j < run.batch; ++j) {
      const int quartile = static_cast<int>(4 * statistics.timesteps[static_cast<std::size_t>(j)] / run.timesteps);
      quartile_loss[quartile] += statistics.per_image_loss[static_cast<std::size_t>(j)];
      quartile_count[quartile] += 1;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const double rate = static_cast<double>(step + 1 - start) / std::max(elapsed, 1e-9);
    if (!options.quiet)
      std::fprintf(stderr, "\rstep %lld/%lld  loss %.4f  %.2f steps/s  %.0f img/s  ETA %s   ",
                   static_cast<long long>(step + 1), static_cast<long long>(options.steps), smoothed, rate,
                   rate * static_cast<double>(run.batch),
                   format_duration(static_cast<double>(options.steps - step - 1) / rate).c_str());
    std::optional<TrainingFid::Result> measured;
    if (fid && (step + 1) % options.fid_every == 0) {
      ema.swap();
      model.eval();
      Generator unused(0);
      const auto denoiser = [&](const Tensor& x, const Tensor& t, const Tensor& y) {
        NoGrad no_grad;
        return model.forward(Variable(x), t, y, unused).value();
      };
      measured = fid->measure(schedule, denoiser, {options.model.in_channels, options.model.image_size, options.model.image_size},
                              run.prediction);
      model.train();
      ema.swap();
      if (!options.quiet)
        std::fprintf(stderr, "\nstep %lld: FID %.3f, KID %.5f (%lld EMA samples, DDIM %lld steps)\n", static_cast<long long>(step + 1),
                     measured->fid, measured->kid, static_cast<long long>(options.fid_samples), static_cast<long long>(options.fid_steps));
    }
    if (writer && ((step + 1) % options.log_every == 0 || step + 1 == options.steps || measured)) {
      log << step + 1 << ',' << interval_loss / interval_count << ',' << adam.learning_rate << ',' << last_norm << ',' << elapsed;
      for (int q = 0; q < 4; ++q) {
        log << ',';
        if (quartile_count[q] > 0) log << quartile_loss[q] / quartile_count[q];
        quartile_loss[q] = quartile_count[q] = 0;
      }
      log << ',' << interval_mse / interval_count << ',';
      if (statistics.has_bound) log << interval_bound / interval_count;
      if (log_has_fid) {
        log << ',';
        if (measured) log << measured->fid << ',' << measured->kid;
        else log << ',';
      }
      log << '\n' << std::flush;
      if (!log) throw std::runtime_error(log_path + ": write failed");
      history.add(step + 1, interval_loss / interval_count);
      if (measured) history.add_fid(step + 1, measured->fid);
      write_loss_plot(directory->file("loss.png"), history);
      interval_loss = interval_mse = interval_bound = 0;
      interval_count = 0;
    }
    if (options.checkpoint_every > 0 && (step + 1) % options.checkpoint_every == 0) save(step + 1);
    else if ((step + 1) % options.check_ranks_every == 0)
      check_processes_agree(group, model, adam, ema, step + 1);
    if (writer && options.sample_every > 0 && (step + 1) % options.sample_every == 0) {
      ema.swap();
      model.eval();
      Generator unused(0);
      diffusion::SamplerOptions sampler;
      sampler.steps = options.sample_steps;
      sampler.ddim = true;
      sampler.seed = run.seed;
      sampler.prediction = run.prediction;
      const auto denoiser = [&](const Tensor& x, const Tensor& t, const Tensor& y) {
        NoGrad no_grad;
        return model.forward(Variable(x), t, y, unused).value();
      };
      const Tensor images = diffusion::sample(schedule, denoiser, {options.sample_count, options.model.in_channels,
                                              options.model.image_size, options.model.image_size}, sampler).images;
      char name[64];
      std::snprintf(name, sizeof name, "samples-%07lld.png", static_cast<long long>(step + 1));
      write_png(directory->file(name), image_grid(images));
      model.train();
      ema.swap();
    }
  }
  save(step);
  if (!options.quiet) std::fprintf(stderr, "\n");
  if (!writer) return 0;
  if (stopped) {
    std::fprintf(stderr, "interrupted: checkpoint at step %lld saved to %s; continue with --resume\n",
                 static_cast<long long>(step), checkpoint_path.c_str());
    return 0;
  }
  std::fprintf(stderr, "done: %lld steps, checkpoint %s, log %s\n", static_cast<long long>(step), checkpoint_path.c_str(),
               log_path.c_str());
  return 0;
}

}  // namespace ddpm::tools
