// `ddpm classifier train` and `ddpm classifier test`: the feature network of FID
// (nn/feature_classifier.hpp), trained and measured by this engine.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <stdexcept>

#include "nn/feature_classifier.hpp"
#include "nn/optimizer.hpp"
#include "nn/safetensors.hpp"
#include "tensor/tensor_library.hpp"
#include "tools/commands.hpp"
#include "tools/dataset.hpp"
#include "tools/duration.hpp"

namespace ddpm::tools {
namespace {

void check_images(const Dataset& data, const std::string& source) {
  if (data.channels != 1 || data.size != nn::FeatureClassifier::image_size || data.labels.empty() ||
      data.classes > nn::FeatureClassifier::classes)
    throw std::runtime_error(source + ": the feature classifier needs labelled 28 x 28 gray images of at most 10 classes, got " +
                             std::to_string(data.channels) + " channel(s) of " + std::to_string(data.size) + " x " +
                             std::to_string(data.size) + (data.labels.empty() ? ", unlabelled" : ""));
}

// Fraction of `data` whose predicted class is its label, in batches of `batch` (in eval
// mode, without gradients; batching never changes a logit's bits).
double accuracy(const nn::FeatureClassifier& model, const Dataset& data, std::int64_t batch) {
  NoGrad no_grad;
  std::int64_t correct = 0;
  for (std::int64_t first = 0; first < data.count; first += batch) {
    std::vector<std::int64_t> indices;
    for (std::int64_t i = first; i < std::min(data.count, first + batch); ++i) indices.push_back(i);
    const auto predicted = nn::predicted_classes(model.forward(Variable(data.batch(indices))).value()).to_vector<std::int64_t>();
    for (std::size_t i = 0; i < indices.size(); ++i) correct += predicted[i] == data.labels[static_cast<std::size_t>(indices[i])];
  }
  return static_cast<double>(correct) / static_cast<double>(data.count);
}

// Augmentation: each image is mirrored left to right with probability 1/2, a coin keyed by
// (seed, step, position in the batch), so a run is reproducible bit for bit. Garments are
// as likely facing either way; the test split is not mirrored.
Tensor mirrored_half(Tensor images, std::uint64_t seed, std::int64_t step) {
  const std::int64_t count = images.size(0), size = images.size(3), rows = images.size(1) * images.size(2);
  float* data = images.data<float>();
  for (std::int64_t image = 0; image < count; ++image) {
    if (uniform_at(seed ^ 0x6d6972726f72ULL, static_cast<std::uint64_t>(step * count), static_cast<std::uint64_t>(image)) < 0.5) continue;
    for (std::int64_t row = 0; row < rows; ++row) {
      float* line = data + (image * rows + row) * size;
      std::reverse(line, line + size);
    }
  }
  return images;
}

}  // namespace

int run_classifier_train(const ClassifierOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  const Dataset train = load_dataset(options.data, "train"), test = load_dataset(options.data, "test");
  check_images(train, options.data + " (train)");
  check_images(test, options.data + " (test)");
  Generator init(options.seed);
  nn::FeatureClassifier model(init);
  nn::Adam adam = nn::AdamW(model.named_parameters(), options.lr, options.weight_decay);
  const std::int64_t steps_per_epoch = train.count / options.batch, steps = options.epochs * steps_per_epoch;
  if (steps_per_epoch == 0) throw std::runtime_error("--batch " + std::to_string(options.batch) + " is larger than the data (" + std::to_string(train.count) + " images)");
  const auto start = std::chrono::steady_clock::now();
  double recent_loss = 0;
  for (std::int64_t step = 0; step < steps; ++step) {
    // Cosine decay to zero over the run.
    adam.learning_rate = options.lr * 0.5 * (1.0 + std::cos(std::numbers::pi * static_cast<double>(step) / static_cast<double>(steps)));
    const auto indices = batch_indices(train.count, options.seed, step, options.batch);
    Variable loss = nn::cross_entropy(model.forward(Variable(mirrored_half(train.batch(indices), options.seed, step))),
                                      train.batch_labels(indices));
    adam.zero_grad();
    loss.backward();
    adam.step();
    recent_loss = step == 0 ? loss.value().item() : 0.98 * recent_loss + 0.02 * loss.value().item();
    if (!options.quiet && (step % 20 == 0 || step + 1 == steps)) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double rate = static_cast<double>(step + 1) / seconds;
      std::fprintf(stderr, "\rstep %lld/%lld (epoch %lld)  loss %.4f  %.1f steps/s  ETA %s   ",
                   static_cast<long long>(step + 1), static_cast<long long>(steps),
                   static_cast<long long>(step / steps_per_epoch + 1), recent_loss, rate,
                   format_duration(static_cast<double>(steps - step - 1) / rate).c_str());
    }
  }
  if (!options.quiet) std::fprintf(stderr, "\n");
  model.eval();
  const double test_accuracy = accuracy(model, test, 500);
  const std::string fingerprint = nn::weights_fingerprint(model);
  char accuracy_text[32];
  std::snprintf(accuracy_text, sizeof accuracy_text, "%.4f", test_accuracy);
  const std::map<std::string, std::string> metadata = {
      {"format", "ddpm-feature-classifier"},
      {"test_accuracy", accuracy_text},
      {"feature_layer", "mean over H, W of mid2 after GroupNorm+SiLU: 128 features"},
      {"fingerprint", fingerprint},
      {"recipe", "ddpm classifier train --data " + options.data + " --epochs " + std::to_string(options.epochs) +
                     " --batch " + std::to_string(options.batch) + " --lr " + std::to_string(options.lr) + " --weight-decay " + std::to_string(options.weight_decay) +
                     " --seed " + std::to_string(options.seed) + " (left-right mirroring of half the images)"}};
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, value] : model.state_dict()) tensors.emplace_back(name, value);
  write_safetensors(options.weights, tensors, metadata);
  std::printf("test accuracy %.4f (%lld images), fingerprint %s, written to %s\n", test_accuracy,
              static_cast<long long>(test.count), fingerprint.c_str(), options.weights.c_str());
  return 0;
}

int run_classifier_test(const ClassifierOptions& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  const SafetensorsContents contents = read_safetensors(options.weights);
  const Dataset test = load_dataset(options.data, "test");
  check_images(test, options.data + " (test)");
  Generator init(0);
  nn::FeatureClassifier model(init);
  std::map<std::string, Tensor> tensors(contents.tensors.begin(), contents.tensors.end());
  model.load_state_dict(tensors);
  model.eval();
  std::printf("test accuracy %.4f (%lld images), fingerprint %s\n", accuracy(model, test, 500),
              static_cast<long long>(test.count), nn::weights_fingerprint(model).c_str());
  return 0;
}

}  // namespace ddpm::tools
