#include "tools/training_fid.hpp"

#include <stdexcept>

#include "ddpm/kernel_distance.hpp"
#include "tensor/tensor_library.hpp"
#include "tools/classifier_weights.hpp"
#include "tools/dataset.hpp"

namespace ddpm::tools {
namespace {
constexpr std::int64_t sampling_batch = 64;
}

TrainingFid::TrainingFid(const std::string& data_source, std::int64_t samples, std::int64_t sampling_steps, std::uint64_t seed)
    : classifier_(load_classifier(default_classifier_path())), samples_(samples), sampling_steps_(sampling_steps), seed_(seed) {
  if (samples < 2) throw std::runtime_error("--fid-samples must be >= 2");
  const Dataset test = load_dataset(data_source, "test");
  if (test.channels != 1 || test.size != nn::FeatureClassifier::image_size)
    throw std::runtime_error("--fid-every: FID's feature network takes 28 x 28 gray images, and " + data_source + " has " +
                             std::to_string(test.channels) + " channel(s) of " + std::to_string(test.size) + " x " +
                             std::to_string(test.size));
  reference_ = diffusion::classify_images(*classifier_, test.range());
  reference_statistics_ = diffusion::feature_statistics(reference_.features);
}

TrainingFid::Result TrainingFid::measure(const diffusion::NoiseSchedule& schedule, const diffusion::Denoiser& denoiser,
                                         const Shape& image_shape, diffusion::Prediction prediction) const {
  diffusion::SamplerOptions options;
  options.ddim = true;
  options.steps = sampling_steps_;
  options.seed = seed_;
  options.prediction = prediction;
  std::vector<Tensor> pieces;
  for (std::int64_t first = 0; first < samples_; first += sampling_batch) {
    const std::int64_t count = std::min(sampling_batch, samples_ - first);
    options.first_image = first;
    pieces.push_back(diffusion::sample(schedule, denoiser, {count, image_shape[0], image_shape[1], image_shape[2]}, options).images);
  }
  const diffusion::ClassifierOutputs generated = diffusion::classify_images(*classifier_, concat(pieces, 0));
  Result result;
  result.fid = diffusion::frechet_distance(diffusion::feature_statistics(generated.features), reference_statistics_);
  result.kid = diffusion::kernel_distance(generated.features, reference_.features).estimate;
  return result;
}

}  // namespace ddpm::tools
