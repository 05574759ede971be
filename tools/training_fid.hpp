#pragma once
// The periodic FID of `ddpm train --fid-every K --fid-samples N`: the EMA model's samples
// (DDIM, the run's seed, so every measurement draws from the same noise) against the test
// split of the training data, through FID's feature network.
#include <cstdint>
#include <memory>
#include <string>

#include "ddpm/frechet_distance.hpp"
#include "ddpm/sample_quality.hpp"
#include "ddpm/sampler.hpp"

namespace ddpm::tools {

class TrainingFid {
 public:
  // Loads the feature network and the reference split's features now, so that a missing
  // file or unsuitable data fails before the first step.
  TrainingFid(const std::string& data_source, std::int64_t samples, std::int64_t sampling_steps, std::uint64_t seed);

  struct Result {
    double fid = 0, kid = 0;
  };
  // image_shape: [C, H, W] of the model's images.
  Result measure(const diffusion::NoiseSchedule& schedule, const diffusion::Denoiser& denoiser, const Shape& image_shape,
                 diffusion::Prediction prediction) const;

  std::int64_t samples() const { return samples_; }

 private:
  std::unique_ptr<nn::FeatureClassifier> classifier_;
  diffusion::ClassifierOutputs reference_;
  diffusion::FeatureStatistics reference_statistics_;  // the same at every measurement
  std::int64_t samples_, sampling_steps_;
  std::uint64_t seed_;
};

}  // namespace ddpm::tools
