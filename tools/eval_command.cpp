// `ddpm eval`: bits/dim of a data split under a checkpoint (the full T-term bound per
// image), as a table and as JSON, mean ± standard error, with its three parts.
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "ddpm/bits_per_dim.hpp"
#include "tensor/tensor_library.hpp"
#include "nn/atomic_file.hpp"
#include "tools/checkpoint.hpp"
#include "tools/commands.hpp"
#include "tools/dataset.hpp"
#include "tools/processes.hpp"

namespace ddpm::tools {
namespace {
struct Summary {
  double mean = 0, standard_error = 0;
};
Summary summarize(const std::vector<double>& values) {
  Summary s;
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(values.size());
  if (values.size() > 1) {
    double squares = 0;
    for (double v : values) squares += (v - s.mean) * (v - s.mean);
    s.standard_error = std::sqrt(squares / static_cast<double>(values.size() - 1) / static_cast<double>(values.size()));
  }
  return s;
}
}  // namespace

int run_eval(const EvalOptions& requested) {
  if (requested.fid) return run_sample_quality(requested);
  if (requested.checkpoint.empty()) throw std::runtime_error("eval needs --checkpoint (or --fid --images FILE)");
  if (!requested.images.empty()) throw std::runtime_error("--images is measured by --fid; bits/dim needs a --checkpoint");
  EvalOptions options = requested;
  diffusion::ProcessGroup& group = processes();
  if (group.rank() != 0) options.quiet = true;
  set_num_threads(threads_for_this_process(options.threads));
  const Checkpoint checkpoint = Checkpoint::read(options.checkpoint);
  const nn::UNetConfig config = checkpoint.config();
  const std::string source = options.data.empty() ? checkpoint.run().settings.data : options.data;
  if (source.empty()) throw std::runtime_error(options.checkpoint + ": records no data source: give --data");
  const Dataset data = load_dataset(source, options.split);
  if (data.size != config.image_size || data.channels != config.in_channels)
    throw std::runtime_error(source + ": images are " + std::to_string(data.size) + "x" + std::to_string(data.size) +
                             " but the checkpoint's model expects " + std::to_string(config.image_size));
  const std::int64_t count = options.n_images > 0 ? std::min(options.n_images, data.count) : data.count;
  Generator init(0), unused(0);
  nn::UNet model(config, init);
  if (options.ema && !checkpoint.has_ema()) throw std::runtime_error(options.checkpoint + ": has no EMA weights; use --no-ema");
  checkpoint.load_into(model, options.ema);
  model.eval();
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(
      checkpoint.run().settings.schedule, checkpoint.run().settings.timesteps);
  const auto variance = model_variance(options.variance, config);
  const auto denoiser = [&](const Tensor& x, const Tensor& t, const Tensor& y) {
    NoGrad no_grad;
    return model.forward(Variable(x), t, y, unused).value();
  };
  // Under mpirun each rank evaluates a contiguous share; every draw is keyed by the image's
  // index, and rank 0 summarises all values in image order: the bits of one process.
  const std::int64_t share_begin = count * group.rank() / group.size();
  const std::int64_t share_end = count * (group.rank() + 1) / group.size();
  std::vector<double> totals, priors, decoders, kls;
  for (std::int64_t first = share_begin; first < share_end; first += options.batch) {
    const std::int64_t n = std::min(options.batch, share_end - first);
    std::vector<std::int64_t> indices(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) indices[static_cast<std::size_t>(i)] = first + i;
    const auto bound = diffusion::variational_bound(schedule, denoiser, data.batch(indices), variance, true, options.seed, first,
                                                     checkpoint.run().settings.prediction);
    for (std::int64_t i = 0; i < n; ++i) {
      totals.push_back(bound.total.at({i}));
      priors.push_back(bound.prior.at({i}));
      decoders.push_back(bound.terms.at({i, 0}));
      kls.push_back(totals.back() - priors.back() - decoders.back());
    }
    if (!options.quiet) std::fprintf(stderr, "\revaluated %lld/%lld images   ", static_cast<long long>(first + n), static_cast<long long>(share_end));
  }
  if (!options.quiet) std::fprintf(stderr, "\n");
  totals = diffusion::all_gather<double>(group, totals);
  priors = diffusion::all_gather<double>(group, priors);
  decoders = diffusion::all_gather<double>(group, decoders);
  kls = diffusion::all_gather<double>(group, kls);
  if (group.rank() != 0) return 0;
  const Summary total = summarize(totals), prior = summarize(priors), decoder = summarize(decoders), kl = summarize(kls);
  std::printf("bits/dim on %lld %s images of %s (%lld steps, %s variance, %s weights)\n", static_cast<long long>(count),
              options.split.c_str(), source.c_str(), static_cast<long long>(schedule.size()), diffusion::variance_name(variance).c_str(),
              options.ema ? "EMA" : "raw");
  std::printf("  %-22s %10.5f ± %.5f\n", "total", total.mean, total.standard_error);
  std::printf("  %-22s %10.5f ± %.5f\n", "prior L_T", prior.mean, prior.standard_error);
  std::printf("  %-22s %10.5f ± %.5f\n", "sum of KL L_1..L_T-1", kl.mean, kl.standard_error);
  std::printf("  %-22s %10.5f ± %.5f\n", "decoder L_0", decoder.mean, decoder.standard_error);
  if (!options.json.empty()) {
    std::ostringstream json;  // written whole, checked and renamed into place
    auto field = [&](const char* name, const Summary& s, bool last) {
      json << "  \"" << name << "\": {\"mean\": " << s.mean << ", \"standard_error\": " << s.standard_error << "}" << (last ? "\n" : ",\n");
    };
    json.precision(9);
    json << "{\n  \"checkpoint\": \"" << options.checkpoint << "\",\n  \"images\": " << count << ",\n  \"split\": \""
         << options.split << "\",\n";
    field("total_bits_per_dim", total, false);
    field("prior", prior, false);
    field("kl_sum", kl, false);
    field("decoder", decoder, true);
    json << "}\n";
    const std::string text = json.str();
    write_text_file_atomically(options.json, text);
  }
  return 0;
}

}  // namespace ddpm::tools
