#include "ddpm/sample_quality.hpp"

#include <algorithm>
#include <cmath>

#include "autograd/variable.hpp"
#include "ddpm/frechet_distance.hpp"
#include "ddpm/kernel_distance.hpp"
#include "ddpm/pairwise.hpp"
#include "nn/feature_classifier.hpp"
#include "tensor/joining.hpp"

namespace ddpm::diffusion {
namespace {
// Images per classifier call: fixed, so features never depend on the caller's batching.
constexpr std::int64_t classifier_chunk = 100;

Tensor flattened(const Tensor& images) { return images.contiguous().reshape({images.size(0), -1}); }
}  // namespace

ClassifierOutputs classify_images(const nn::FeatureClassifier& classifier, const Tensor& images) {
  check(images.rank() == 4 && images.size(0) >= 1, "classify_images", "expects images [N, 1, 28, 28], got ",
        shape_string(images.shape()));
  NoGrad no_grad;
  std::vector<Tensor> features, logits;
  for (std::int64_t first = 0; first < images.size(0); first += classifier_chunk) {
    const std::int64_t count = std::min(classifier_chunk, images.size(0) - first);
    const Variable chunk_features = classifier.features(Variable(images.narrow(0, first, count).to(DType::Float32).contiguous()));
    features.push_back(chunk_features.value());
    logits.push_back(classifier.head->forward(chunk_features).value());
  }
  return {concat(features, 0), concat(logits, 0)};
}

PrecisionRecall precision_recall(const Tensor& real, const Tensor& generated, std::int64_t k) {
  PrecisionRecall result;
  result.precision = fraction_within(generated, real, kth_neighbour_distances(real, k));
  result.recall = fraction_within(real, generated, kth_neighbour_distances(generated, k));
  return result;
}

ClassHistogram class_histogram(const Tensor& logits) {
  check(logits.rank() == 2 && logits.size(0) >= 1, "class_histogram", "expects logits [N, K], got ", shape_string(logits.shape()));
  ClassHistogram histogram;
  histogram.counts.assign(static_cast<std::size_t>(logits.size(1)), 0);
  for (std::int64_t label : nn::predicted_classes(logits).to_vector<std::int64_t>()) ++histogram.counts[static_cast<std::size_t>(label)];
  for (std::int64_t count : histogram.counts) {
    if (count == 0) continue;
    const double p = static_cast<double>(count) / static_cast<double>(logits.size(0));
    histogram.entropy_bits -= p * std::log2(p);
  }
  return histogram;
}

Memorisation memorisation(const Tensor& samples, const Tensor& train, const Tensor& test, double quantile) {
  auto image_shape = [](const Tensor& images) { return Shape(images.shape().begin() + 1, images.shape().end()); };
  check(samples.rank() >= 2 && image_shape(train) == image_shape(samples) && image_shape(test) == image_shape(samples) &&
            test.size(0) >= 1 && train.size(0) >= 1,
        "memorisation", "samples ", shape_string(samples.shape()), ", training ", shape_string(train.shape()), " and test ",
        shape_string(test.shape()), " images must share one shape");
  check(quantile > 0 && quantile < 1, "memorisation", "the quantile must lie in (0, 1), got ", quantile);
  Memorisation result;
  result.quantile = quantile;
  std::vector<double> test_distances = nearest_distances(flattened(test), flattened(train));
  std::sort(test_distances.begin(), test_distances.end());
  result.threshold = test_distances[static_cast<std::size_t>(std::floor(quantile * static_cast<double>(test_distances.size() - 1)))];
  const std::vector<double> sample_distances = nearest_distances(flattened(samples), flattened(train));
  const auto flagged = std::count_if(sample_distances.begin(), sample_distances.end(), [&](double d) { return d < result.threshold; });
  result.fraction = static_cast<double>(flagged) / static_cast<double>(sample_distances.size());
  return result;
}

SampleQuality sample_quality(const ClassifierOutputs& generated, const ClassifierOutputs& reference) {
  SampleQuality quality;
  quality.generated = generated.features.size(0);
  quality.reference = reference.features.size(0);
  quality.fid = frechet_distance(feature_statistics(generated.features), feature_statistics(reference.features));
  const KernelDistance kid = kernel_distance(generated.features, reference.features);
  quality.kid = kid.estimate;
  quality.kid_standard_error = kid.standard_error;
  quality.precision_recall = precision_recall(reference.features, generated.features);
  quality.classes = class_histogram(generated.logits);
  return quality;
}

}  // namespace ddpm::diffusion
