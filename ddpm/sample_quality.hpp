#pragma once
// How good generated images are, measured against real ones through the feature network
// (nn::FeatureClassifier, trained by this engine): FID, KID, improved precision and recall
// (Kynkäänniemi et al. 2019), the predicted classes, and in pixel space a check for
// copies of training images. Every result is a function of the image sets alone: features
// are computed in fixed chunks and every sum runs in a fixed order, so neither the thread
// count nor how the caller batched its images changes a bit.
#include <cstdint>
#include <string>
#include <vector>

#include "nn/feature_classifier.hpp"
#include "tensor/tensor.hpp"

namespace ddpm::diffusion {

struct ClassifierOutputs {
  Tensor features;  // [N, 128]: the pooled last convolution
  Tensor logits;    // [N, 10]
};

// images [N, 1, 28, 28] in [-1, 1] -> features and logits, without gradients.
ClassifierOutputs classify_images(const nn::FeatureClassifier& classifier, const Tensor& images);

struct PrecisionRecall {
  double precision = 0;  // fraction of generated points inside the real k-NN manifold
  double recall = 0;     // fraction of real points inside the generated k-NN manifold
};
// real [N, D], generated [M, D]; the manifold of a set is the union of balls around each
// point reaching its k-th nearest neighbour in that set.
PrecisionRecall precision_recall(const Tensor& real, const Tensor& generated, std::int64_t k = 3);

struct ClassHistogram {
  std::vector<std::int64_t> counts;  // per class, of the classifier's predictions
  double entropy_bits = 0;           // of the predicted-class frequencies; log2(10) = 3.32 is uniform
};
ClassHistogram class_histogram(const Tensor& logits);

struct Memorisation {
  double quantile = 0.01;     // of the test images' nearest-training distances
  double threshold = 0;       // that quantile, in pixel units of [-1, 1] images
  double fraction = 0;        // of the samples nearer a training image than the threshold
};
// Pixel-space check for copies: the distance from each image to its nearest training image,
// compared with the same distance for held-out test images. A set of new images is flagged
// at about `quantile` (as the test images themselves are); copies of training images at 1.
// samples [N, ...], train [M, ...], test [K, ...] images of one shape.
Memorisation memorisation(const Tensor& samples, const Tensor& train, const Tensor& test, double quantile = 0.01);

struct SampleQuality {
  std::int64_t generated = 0, reference = 0;  // images in each set
  double fid = 0;
  double kid = 0, kid_standard_error = 0;
  PrecisionRecall precision_recall;
  ClassHistogram classes;  // of the generated images
};
SampleQuality sample_quality(const ClassifierOutputs& generated, const ClassifierOutputs& reference);

}  // namespace ddpm::diffusion
