#include "nn/feature_classifier.hpp"

#include <cstdio>
#include <cstring>
#include <vector>

namespace ddpm::nn {

FeatureClassifier::FeatureClassifier(Generator& generator) {
  conv_in = register_module("conv_in", std::make_shared<Conv2d>(1, 32, 3, 1, 1, generator));
  norm_in = register_module("norm_in", std::make_shared<GroupNorm>(8, 32));
  down1 = register_module("down1", std::make_shared<Conv2d>(32, 64, 3, 2, 1, generator));
  norm1 = register_module("norm1", std::make_shared<GroupNorm>(8, 64));
  mid = register_module("mid", std::make_shared<Conv2d>(64, 64, 3, 1, 1, generator));
  norm_mid = register_module("norm_mid", std::make_shared<GroupNorm>(8, 64));
  down2 = register_module("down2", std::make_shared<Conv2d>(64, feature_width, 3, 2, 1, generator));
  norm2 = register_module("norm2", std::make_shared<GroupNorm>(8, feature_width));
  mid2 = register_module("mid2", std::make_shared<Conv2d>(feature_width, feature_width, 3, 1, 1, generator));
  norm_mid2 = register_module("norm_mid2", std::make_shared<GroupNorm>(8, feature_width));
  head = register_module("head", std::make_shared<Linear>(feature_width, classes, generator));
}

Variable FeatureClassifier::features(const Variable& x) const {
  check(x.rank() == 4 && x.size(1) == 1 && x.size(2) == image_size && x.size(3) == image_size, "FeatureClassifier",
        "expects images [N, 1, 28, 28], got ", shape_string(x.shape()));
  Variable h = norm_in->forward(conv_in->forward(x), true);
  h = norm1->forward(down1->forward(h), true);
  h = norm_mid->forward(mid->forward(h), true);
  h = norm2->forward(down2->forward(h), true);
  h = norm_mid2->forward(mid2->forward(h), true);
  return mean(h, {2, 3});
}

Variable FeatureClassifier::forward(const Variable& x) const { return head->forward(features(x)); }

Variable cross_entropy(const Variable& logits, const Tensor& labels) {
  check(logits.rank() == 2 && labels.dtype() == DType::Int64 && labels.shape() == Shape{logits.size(0)},
        "cross_entropy", "expects logits [N, K] and int64 labels [N], got ", shape_string(logits.shape()), " and ",
        shape_string(labels.shape()));
  const std::int64_t rows = logits.size(0), classes = logits.size(1);
  std::vector<float> one_hot(static_cast<std::size_t>(rows * classes), 0.0f);
  const auto label_values = labels.to_vector<std::int64_t>();
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::int64_t label = label_values[static_cast<std::size_t>(row)];
    check(label >= 0 && label < classes, "cross_entropy", "label ", label, " of row ", row, " is not in [0, ", classes, ")");
    one_hot[static_cast<std::size_t>(row * classes + label)] = 1.0f;
  }
  const Tensor picks = Tensor::from_vector(one_hot, {rows, classes}).to(logits.dtype());
  return neg(mean(sum(mul(log_softmax(logits, 1), Variable(picks)), {1})));
}

Tensor predicted_classes(const Tensor& logits) {
  check(logits.rank() == 2, "predicted_classes", "expects logits [N, K], got ", shape_string(logits.shape()));
  const auto values = logits.to(DType::Float64).to_vector<double>();
  const std::int64_t rows = logits.size(0), classes = logits.size(1);
  std::vector<std::int64_t> best(static_cast<std::size_t>(rows), 0);
  for (std::int64_t row = 0; row < rows; ++row)
    for (std::int64_t k = 1; k < classes; ++k)
      if (values[static_cast<std::size_t>(row * classes + k)] > values[static_cast<std::size_t>(row * classes + best[row])])
        best[static_cast<std::size_t>(row)] = k;
  return Tensor::from_vector(best, {rows});
}

std::string weights_fingerprint(const Module& module) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&](const void* data, std::size_t bytes) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    for (std::size_t i = 0; i < bytes; ++i) hash = (hash ^ p[i]) * 0x100000001b3ULL;
  };
  for (const auto& [name, value] : module.state_dict()) {  // a std::map: name order
    mix(name.data(), name.size());
    for (std::int64_t size : value.shape()) mix(&size, sizeof size);
    const Tensor values = value.contiguous().to(DType::Float32);
    mix(values.raw_data(), static_cast<std::size_t>(values.numel()) * sizeof(float));
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

}  // namespace ddpm::nn
