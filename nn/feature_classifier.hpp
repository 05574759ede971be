#pragma once
// The feature network of `ddpm eval --fid`: a small CNN classifier of 28 x 28 gray images
// (Fashion-MNIST), trained by this engine (`ddpm classifier train`), since no Inception
// network can be downloaded. Its features are the 128 channels of the last convolution
// averaged over the image, the layer FID compares (as Inception's pool3 for ImageNet).
//
//   x [N, 1, 28, 28] in [-1, 1]
//   conv_in 3x3 1->32 @28, GroupNorm(8) + SiLU
//   down1   3x3 stride 2 32->64 @14, GroupNorm(8) + SiLU
//   mid     3x3 64->64 @14, GroupNorm(8) + SiLU
//   down2   3x3 stride 2 64->128 @7, GroupNorm(8) + SiLU
//   mid2    3x3 128->128 @7, GroupNorm(8) + SiLU
//   features = mean over H, W: [N, 128];  head: Linear 128->10 -> logits [N, 10]
#include <cstdint>
#include <memory>
#include <string>

#include "nn/layers.hpp"

namespace ddpm::nn {

class FeatureClassifier : public Module {
 public:
  static constexpr std::int64_t feature_width = 128;
  static constexpr std::int64_t classes = 10;
  static constexpr std::int64_t image_size = 28;

  explicit FeatureClassifier(Generator& generator);
  // [N, 1, 28, 28] -> [N, 128]
  Variable features(const Variable& x) const;
  // [N, 1, 28, 28] -> logits [N, 10]
  Variable forward(const Variable& x) const;

  std::shared_ptr<Conv2d> conv_in, down1, mid, down2, mid2;
  std::shared_ptr<GroupNorm> norm_in, norm1, norm_mid, norm2, norm_mid2;
  std::shared_ptr<Linear> head;
};

// Cross-entropy of logits [N, K] against int64 labels [N] in [0, K), averaged over N.
Variable cross_entropy(const Variable& logits, const Tensor& labels);

// The most likely class of each row of logits [N, K] -> int64 [N] (the first on ties).
Tensor predicted_classes(const Tensor& logits);

// A hash of the weights (FNV-1a, 64 bits, over names, shapes and float bytes in name
// order) as 16 hex digits: every FID names the network it was measured with.
std::string weights_fingerprint(const Module& module);

}  // namespace ddpm::nn
