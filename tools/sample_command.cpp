// `ddpm sample`: images from a checkpoint, as a PNG grid, a trajectory picture and raw tensors.
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "ddpm/sampler.hpp"
#include "tensor/tensor_library.hpp"
#include "tools/checkpoint.hpp"
#include "tools/commands.hpp"
#include "tools/idx.hpp"
#include "tools/image_grid.hpp"
#include "tools/processes.hpp"

namespace ddpm::tools {

Tensor generate_images(const SampleOptions& options, std::vector<Tensor>* trajectory_rows) {
  diffusion::ProcessGroup& group = processes();
  if (options.n < 1) throw std::runtime_error("--n must be >= 1");
  const Checkpoint checkpoint = Checkpoint::read(options.checkpoint);
  const nn::UNetConfig config = checkpoint.config();
  Generator init(0), unused(0);
  nn::UNet model(config, init);
  if (options.ema && !checkpoint.has_ema())
    throw std::runtime_error(options.checkpoint + ": has no EMA weights; use --no-ema");
  checkpoint.load_into(model, options.ema);
  model.eval();
  if (options.label >= 0 && options.label >= config.num_classes)
    throw std::runtime_error("--class " + std::to_string(options.label) + ": the model has " +
                             std::to_string(config.num_classes) + " classes");
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(
      checkpoint.run().settings.schedule, checkpoint.run().settings.timesteps);
  diffusion::SamplerOptions sampler;
  sampler.steps = options.steps;
  sampler.ddim = options.sampler == "ddim";
  if (!sampler.ddim && options.sampler != "ancestral") throw std::runtime_error("--sampler must be ancestral or ddim");
  sampler.eta = options.eta;
  sampler.variance = model_variance(options.variance, config);
  sampler.prediction = checkpoint.run().settings.prediction;
  sampler.guidance = options.guidance;
  sampler.seed = options.seed;
  sampler.record_every = trajectory_rows ? std::max<std::int64_t>(1, (options.steps > 0 ? options.steps : schedule.size()) / 10) : 0;
  const auto denoiser = [&](const Tensor& x, const Tensor& t, const Tensor& y) {
    NoGrad no_grad;
    return model.forward(Variable(x), t, y, unused).value();
  };
  // Under mpirun each rank draws a contiguous share of the images; the noise is keyed by the
  // image's index, so the images are those one process draws.
  const std::int64_t share_begin = options.n * group.rank() / group.size();
  const std::int64_t share_end = options.n * (group.rank() + 1) / group.size();
  std::vector<Tensor> pieces;
  for (std::int64_t first = share_begin; first < share_end; first += options.batch) {
    const std::int64_t count = std::min(options.batch, share_end - first);
    sampler.first_image = first;
    sampler.labels = Tensor();
    if (options.label >= 0) {
      sampler.labels = full({count}, static_cast<double>(options.label), DType::Int64);
    } else if (options.balanced_labels && config.num_classes > 0) {
      std::vector<std::int64_t> labels;  // image i gets class i mod K: every class equally often
      for (std::int64_t i = first; i < first + count; ++i) labels.push_back(i % config.num_classes);
      sampler.labels = Tensor::from_vector(labels, {count});
    }
    sampler.progress = [&](std::int64_t done, std::int64_t all) {
      if (!options.quiet) std::fprintf(stderr, "\rsampling images %lld-%lld: step %lld/%lld   ", static_cast<long long>(first),
                                       static_cast<long long>(first + count - 1), static_cast<long long>(done), static_cast<long long>(all));
    };
    const auto result = diffusion::sample(schedule, denoiser, {count, config.in_channels, config.image_size, config.image_size}, sampler);
    pieces.push_back(result.images);
    if (first == 0 && trajectory_rows)
      for (const Tensor& x : result.trajectory) trajectory_rows->push_back(x.narrow(0, 0, std::min<std::int64_t>(count, 8)));
  }
  if (!options.quiet) std::fprintf(stderr, "\n");
  std::vector<float> mine;
  for (const Tensor& piece : pieces)
    for (float value : piece.to_vector<float>()) mine.push_back(value);
  const std::vector<float> all = diffusion::all_gather<float>(group, mine);
  return Tensor::from_vector(all, {options.n, config.in_channels, config.image_size, config.image_size});
}

int run_sample(const SampleOptions& requested) {
  SampleOptions options = requested;
  diffusion::ProcessGroup& group = processes();
  if (group.rank() != 0) options.quiet = true;
  set_num_threads(threads_for_this_process(options.threads));
  std::vector<Tensor> trajectory_rows;
  const Tensor images = generate_images(options, options.trajectory.empty() ? nullptr : &trajectory_rows);
  const std::int64_t in_channels = images.size(1);
  if (group.rank() != 0) return 0;  // rank 0 writes every file
  write_png(options.out, image_grid(images));
  if (!options.trajectory.empty()) {
    // One row per sample, one column per recorded step, from noise to image.
    const std::int64_t rows = trajectory_rows.front().size(0), columns = static_cast<std::int64_t>(trajectory_rows.size());
    std::vector<Tensor> ordered;
    for (std::int64_t r = 0; r < rows; ++r)
      for (const Tensor& step : trajectory_rows) ordered.push_back(minimum(maximum(step.narrow(0, r, 1), -1.0), 1.0));
    write_png(options.trajectory, image_grid(concat(ordered, 0), columns));
  }
  if (!options.raw.empty()) {
    if (options.raw.ends_with(".safetensors")) {
      write_safetensors(options.raw, {{"images", images}}, {{"range", "[-1, 1]"}, {"checkpoint", options.checkpoint}});
    } else {
      std::vector<std::uint8_t> bytes;
      for (float v : images.to_vector<float>())
        bytes.push_back(static_cast<std::uint8_t>(std::lround((std::min(std::max(v, -1.0f), 1.0f) + 1.0f) * 127.5f)));
      if (in_channels != 1) throw std::runtime_error("--raw IDX output needs single-channel images; use .safetensors");
      write_idx(options.raw, {options.n, images.size(2), images.size(3)}, bytes);
    }
  }
  std::fprintf(stderr, "wrote %lld samples to %s\n", static_cast<long long>(options.n), options.out.c_str());
  return 0;
}

}  // namespace ddpm::tools
