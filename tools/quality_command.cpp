// `ddpm eval --fid`: how good a checkpoint's samples (or any image files) look, measured
// against a real split through the feature network of `ddpm classifier`: FID, KID,
// precision and recall, the predicted classes, and a check for copies of training images.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "ddpm/sample_quality.hpp"
#include "nn/atomic_file.hpp"
#include "nn/safetensors.hpp"
#include "tensor/tensor_library.hpp"
#include "tools/checkpoint.hpp"
#include "tools/classifier_weights.hpp"
#include "tools/commands.hpp"
#include "tools/dataset.hpp"
#include "tools/processes.hpp"

namespace ddpm::tools {
namespace {

// A safetensors file as `ddpm sample --raw` writes it (float [N, C, H, W] in [-1, 1] named
// "images", or the file's only tensor).
Tensor read_raw_images(const std::string& path) {
  const SafetensorsContents contents = read_safetensors(path);
  const Tensor* found = contents.find("images");
  if (!found && contents.tensors.size() == 1) found = &contents.tensors.front().second;
  if (!found)
    throw std::runtime_error(path + ": holds " + std::to_string(contents.tensors.size()) +
                             " tensors and none named \"images\" (ddpm sample --raw FILE.safetensors writes one)");
  Tensor images = *found;
  if (images.rank() == 3) images = images.reshape({images.size(0), 1, images.size(1), images.size(2)});
  if (images.rank() != 4)
    throw std::runtime_error(path + ": images must be [N, C, H, W] or [N, H, W], got " + shape_string(images.shape()));
  images = images.to(DType::Float32).contiguous();
  for (float value : images.to_vector<float>())
    if (!(value >= -1.001f && value <= 1.001f))
      throw std::runtime_error(path + ": float images must lie in [-1, 1] (as ddpm sample --raw writes them), found " +
                               std::to_string(value));
  return images;
}

// --images: a directory of PNGs, a .safetensors file, or anything else as IDX (.gz or not).
Tensor read_images(const std::string& path) {
  if (std::filesystem::is_directory(path)) return load_dataset("folder:" + path).range();
  if (path.ends_with(".safetensors")) return read_raw_images(path);
  return load_dataset("idx:" + path).range();
}

void check_classifier_images(const Tensor& images, const std::string& what) {
  if (images.rank() != 4 || images.size(1) != 1 || images.size(2) != nn::FeatureClassifier::image_size ||
      images.size(3) != nn::FeatureClassifier::image_size || images.size(0) < 2)
    throw std::runtime_error(what + ": the feature network compares at least two 28 x 28 gray images [N, 1, 28, 28], got " +
                             shape_string(images.shape()));
}

}  // namespace

int run_sample_quality(const EvalOptions& requested) {
  EvalOptions options = requested;
  diffusion::ProcessGroup& group = processes();
  if (group.rank() != 0) options.quiet = true;
  set_num_threads(threads_for_this_process(options.threads));
  if (options.checkpoint.empty() == options.images.empty())
    throw std::runtime_error("--fid needs either --checkpoint (to sample from) or --images (images already made), not both");
  const std::string classifier_path = options.classifier.empty() ? default_classifier_path() : options.classifier;
  const auto classifier = load_classifier(classifier_path);  // before sampling: a missing file fails at once

  Tensor generated;
  std::string source = options.data, what;
  if (!options.images.empty()) {
    generated = read_images(options.images);
    what = options.images;
    if (source.empty()) source = "fashion-mnist";
  } else {
    const Checkpoint checkpoint = Checkpoint::read(options.checkpoint);
    if (source.empty()) source = checkpoint.run().settings.data;
    if (source.empty()) throw std::runtime_error(options.checkpoint + ": records no data source: give --data");
    SampleOptions sampling;
    sampling.checkpoint = options.checkpoint;
    sampling.n = options.n_samples;
    sampling.batch = options.batch;
    sampling.seed = options.seed;
    sampling.sampler = options.sampler;
    sampling.steps = options.steps;
    sampling.eta = options.eta;
    sampling.variance = options.variance;
    sampling.ema = options.ema;
    sampling.quiet = options.quiet;
    sampling.balanced_labels = true;
    generated = generate_images(sampling);
    what = std::to_string(options.n_samples) + " samples of " + options.checkpoint + " (" + options.sampler + ", " +
           (options.steps > 0 ? std::to_string(options.steps) + " steps" : std::string("all steps")) + ", seed " +
           std::to_string(options.seed) + ", " + (options.ema ? "EMA" : "raw") + " weights)";
  }
  if (group.rank() != 0) return 0;  // rank 0 measures
  check_classifier_images(generated, what);
  const Dataset reference_data = load_dataset(source, options.split);
  const Tensor reference = reference_data.range();
  check_classifier_images(reference, source + " (" + options.split + ")");

  if (!options.quiet) std::fprintf(stderr, "computing features of %lld + %lld images\n", static_cast<long long>(generated.size(0)), static_cast<long long>(reference.size(0)));
  const diffusion::ClassifierOutputs generated_outputs = diffusion::classify_images(*classifier, generated);
  const diffusion::ClassifierOutputs reference_outputs = diffusion::classify_images(*classifier, reference);
  const diffusion::SampleQuality quality = diffusion::sample_quality(generated_outputs, reference_outputs);
  const std::string fingerprint = nn::weights_fingerprint(*classifier);
  diffusion::Memorisation copies;
  bool copies_measured = false;
  if (options.memorisation) {
    if (!options.quiet) std::fprintf(stderr, "comparing with every training image\n");
    copies = diffusion::memorisation(generated, load_dataset(source, "train").range(), reference);
    copies_measured = true;
  }

  std::printf("sample quality of %s\nagainst %lld %s images of %s; feature network %s (%s)\n", what.c_str(),
              static_cast<long long>(quality.reference), options.split.c_str(), source.c_str(), fingerprint.c_str(),
              classifier_path.c_str());
  std::printf("  %-20s %12.4f\n", "FID", quality.fid);
  std::printf("  %-20s %12.6f ± %.6f\n", "KID", quality.kid, quality.kid_standard_error);
  std::printf("  %-20s %12.4f\n", "precision (k=3)", quality.precision_recall.precision);
  std::printf("  %-20s %12.4f\n", "recall (k=3)", quality.precision_recall.recall);
  std::printf("  %-20s %12.4f bits (uniform over 10: %.4f)\n", "class entropy", quality.classes.entropy_bits, std::log2(10.0));
  std::printf("  %-20s", "class counts");
  for (std::int64_t count : quality.classes.counts) std::printf(" %lld", static_cast<long long>(count));
  std::printf("\n");
  // A source whose two splits are one data set (idx:FILE) makes every test image its own
  // nearest training image: the threshold is then zero and the check says nothing.
  if (copies_measured && copies.threshold == 0) {
    std::printf("  %-20s not measured: %s's %s images are exact copies of its training images (one data set as both splits?)\n",
                "memorised", source.c_str(), options.split.c_str());
    copies_measured = false;
  }
  if (copies_measured)
    std::printf("  %-20s %12.4f (nearer a training image than %.0f%% of %s images are; new images ~%.2f, copies 1)\n",
                "memorised", copies.fraction, copies.quantile * 100, options.split.c_str(), copies.quantile);

  if (!options.json.empty()) {
    nlohmann::ordered_json json;
    json["images"] = what;
    json["generated"] = quality.generated;
    json["reference"] = {{"data", source}, {"split", options.split}, {"images", quality.reference}};
    json["feature_network"] = {{"path", classifier_path}, {"fingerprint", fingerprint}};
    json["fid"] = quality.fid;
    json["kid"] = {{"estimate", quality.kid}, {"standard_error", std::isfinite(quality.kid_standard_error) ? nlohmann::json(quality.kid_standard_error) : nlohmann::json(nullptr)}};
    json["precision"] = quality.precision_recall.precision;
    json["recall"] = quality.precision_recall.recall;
    json["k"] = 3;
    json["class_counts"] = quality.classes.counts;
    json["class_entropy_bits"] = quality.classes.entropy_bits;
    if (copies_measured) json["memorisation"] = {{"fraction", copies.fraction}, {"threshold", copies.threshold}, {"quantile", copies.quantile}};
    write_text_file_atomically(options.json, json.dump(2) + "\n");
  }
  if (!options.features.empty())
    write_safetensors(options.features, {{"generated", generated_outputs.features}, {"reference", reference_outputs.features}},
                      {{"fingerprint", fingerprint}, {"reference", source + " " + options.split}});
  return 0;
}

}  // namespace ddpm::tools
