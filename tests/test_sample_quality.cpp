// Sample quality (ddpm/sample_quality.hpp): FID, KID, precision/recall and the distances
// under them against NumPy/SciPy values (fixtures/sample_quality_values.py), and on real
// Fashion-MNIST test images through the shipped feature network: degraded images score
// worse the more they are degraded, two real halves score about the same, copies of
// training images are flagged, and nothing depends on batching or thread count.
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_support.hpp"

#include "ddpm/frechet_distance.hpp"
#include "ddpm/kernel_distance.hpp"
#include "ddpm/pairwise.hpp"
#include "ddpm/sample_quality.hpp"
#include "tensor/convolution.hpp"
#include "tensor/parallel.hpp"
#include "tools/classifier_weights.hpp"
#include "tools/dataset.hpp"

namespace ddpm::testing {
namespace {
using namespace ddpm::diffusion;

const nlohmann::json& fixture() {
  static const nlohmann::json values = [] {
    std::ifstream in(DDPM_TEST_FIXTURES "/sample_quality_values.json");
    return nlohmann::json::parse(in);
  }();
  return values;
}

// The point sets of sample_quality_values.py, by the same formulas.
Tensor formula_points(std::int64_t count, double amplitude, double frequency, double shift) {
  std::vector<float> values;
  for (std::int64_t i = 0; i < count; ++i)
    for (std::int64_t d = 0; d < 6; ++d)
      values.push_back(static_cast<float>(amplitude * std::sin(frequency * static_cast<double>((i + 1) * (d + 1)) + 0.91 * static_cast<double>(d)) +
                                          (d % 3 == 0 ? shift : 0.0)));
  return Tensor::from_vector(values, {count, 6});
}
Tensor first_set() { return formula_points(150, 1.0, 0.37, 0.0); }
Tensor second_set() { return formula_points(120, 0.95, 0.3705, 0.05); }

const tools::Dataset& test_split() {
  static const tools::Dataset data = tools::load_dataset("fashion-mnist", "test");
  return data;
}
const nn::FeatureClassifier& classifier() {
  static const auto model = tools::load_classifier(tools::default_classifier_path());
  return *model;
}
// Features of the whole test split, computed once for the cases below.
const ClassifierOutputs& test_outputs() {
  static const ClassifierOutputs outputs = classify_images(classifier(), test_split().range());
  return outputs;
}

double fid(const Tensor& a, const Tensor& b) { return frechet_distance(feature_statistics(a), feature_statistics(b)); }

Tensor blurred(Tensor images, int passes) {
  const Tensor box = full({1, 1, 3, 3}, 1.0 / 9.0);
  Convolution2dOptions options;
  options.padding = 1;
  for (int i = 0; i < passes; ++i) images = conv2d(images, box, Tensor(), options);
  return images;
}

}  // namespace

TEST_CASE("FID, KID, precision, recall and neighbour distances match NumPy and SciPy on synthetic points") {
  const auto& expected = fixture().at("synthetic");
  const Tensor a = first_set(), b = second_set();
  CHECK(fid(a, b) == doctest::Approx(expected.at("fid").get<double>()).epsilon(1e-6));
  const KernelDistance kid = kernel_distance(a, b);
  CHECK(kid.estimate == doctest::Approx(expected.at("kid").get<double>()).epsilon(1e-6));
  CHECK(kid.standard_error == doctest::Approx(expected.at("kid_standard_error").get<double>()).epsilon(1e-6));
  CHECK(kid.subsets == 10);
  const PrecisionRecall pr = precision_recall(a, b);
  CHECK(pr.precision == doctest::Approx(expected.at("precision").get<double>()));
  CHECK(pr.recall == doctest::Approx(expected.at("recall").get<double>()));
  const auto kth = kth_neighbour_distances(a, 3);
  const auto nearest = nearest_distances(b, a);
  const auto expected_kth = expected.at("kth_neighbour_3_of_first").get<std::vector<double>>();
  const auto expected_nearest = expected.at("nearest_second_to_first").get<std::vector<double>>();
  REQUIRE(kth.size() == expected_kth.size());
  REQUIRE(nearest.size() == expected_nearest.size());
  for (std::size_t i = 0; i < kth.size(); ++i) CHECK(kth[i] == doctest::Approx(expected_kth[i]).epsilon(1e-4));
  for (std::size_t i = 0; i < nearest.size(); ++i) CHECK(nearest[i] == doctest::Approx(expected_nearest[i]).epsilon(1e-4));
}

TEST_CASE("FID of a set with itself is zero, and the metrics name bad input") {
  const Tensor a = first_set();
  CHECK(std::abs(fid(a, a)) < 1e-9);
  CHECK_THROWS_WITH_AS(fid(a, Tensor::from_vector(std::vector<float>(12, 0.0f), {3, 4})), doctest::Contains("6 and 4 dimensions"), TensorError);
  CHECK_THROWS_WITH_AS(feature_statistics(zeros({1, 6})), doctest::Contains("[1, 6]"), TensorError);
  CHECK_THROWS_WITH_AS(kth_neighbour_distances(zeros({3, 6}), 3), doctest::Contains("k = 3"), TensorError);
  CHECK_THROWS_WITH_AS(nearest_distances(zeros({3, 6}), zeros({3, 5})), doctest::Contains("6 and 5 dimensions"), TensorError);
}

TEST_CASE("FID of half the test split against all of it matches SciPy on the same features") {
  const auto& expected = fixture().at("test_split");
  const Tensor& features = test_outputs().features;
  REQUIRE(features.size(0) == expected.at("images").get<std::int64_t>());
  const double value = fid(features.narrow(0, 0, features.size(0) / 2), features);
  CHECK(value == doctest::Approx(expected.at("fid_first_half_against_all").get<double>()).epsilon(1e-3));
  CHECK(value < 1.0);  // small: two samples of one distribution
}

TEST_CASE("FID grows with the strength of Gaussian noise and of blur; KID of two real halves is about zero") {
  const Tensor reference = test_outputs().features.narrow(0, 5000, 5000);
  const Tensor clean = test_split().range(0, 1000);
  Generator generator(11);
  const Tensor unit_noise = randn(clean.shape(), generator);
  double previous = fid(test_outputs().features.narrow(0, 0, 1000), reference);
  for (double sigma : {0.05, 0.1, 0.2, 0.4}) {
    const double value = fid(classify_images(classifier(), add(clean, mul(unit_noise, sigma))).features, reference);
    CAPTURE(sigma);
    CHECK(value > previous);
    previous = value;
  }
  previous = fid(test_outputs().features.narrow(0, 0, 1000), reference);
  for (int passes : {1, 2, 4}) {
    const double value = fid(classify_images(classifier(), blurred(clean, passes)).features, reference);
    CAPTURE(passes);
    CHECK(value > previous);
    previous = value;
  }
  const KernelDistance halves = kernel_distance(test_outputs().features.narrow(0, 0, 2500), test_outputs().features.narrow(0, 2500, 2500));
  const KernelDistance noisy = kernel_distance(classify_images(classifier(), add(clean, mul(unit_noise, 0.2))).features, reference);
  CAPTURE(halves.estimate);
  CAPTURE(halves.standard_error);
  CHECK(std::abs(halves.estimate) < 3 * halves.standard_error + 1e-4);
  CHECK(noisy.estimate > 20 * std::abs(halves.estimate));
}

TEST_CASE("the memorisation check flags copies of training images and not new ones") {
  const tools::Dataset train = tools::load_dataset("fashion-mnist", "train");
  const Tensor train_subset = train.range(0, 6000);
  const Tensor held_out = test_split().range(0, 500);
  const Memorisation copies = memorisation(train.range(100, 40), train_subset, held_out);
  CHECK(copies.fraction == 1.0);
  CHECK(copies.threshold > 0);
  const Memorisation fresh = memorisation(test_split().range(500, 300), train_subset, held_out);
  CHECK(fresh.fraction < 0.05);
  CHECK_THROWS_WITH_AS(memorisation(held_out, zeros({4, 1, 8, 8}), held_out), doctest::Contains("[4, 1, 8, 8]"), TensorError);
}

TEST_CASE("features and metrics do not depend on batching or the thread count") {
  const Tensor images = test_split().range(0, 150);
  const ClassifierOutputs whole = classify_images(classifier(), images);
  const ClassifierOutputs middle = classify_images(classifier(), images.narrow(0, 60, 30));
  CHECK(bitwise_equal(middle.features, whole.features.narrow(0, 60, 30)));
  CHECK(bitwise_equal(whole.features, test_outputs().features.narrow(0, 0, 150)));
  const Tensor reference = test_outputs().features.narrow(0, 0, 400);
  const SampleQuality on_all = sample_quality(whole, {reference, test_outputs().logits.narrow(0, 0, 400)});
  set_num_threads(1);
  const ClassifierOutputs single = classify_images(classifier(), images);
  const SampleQuality on_one = sample_quality(single, {reference, test_outputs().logits.narrow(0, 0, 400)});
  set_num_threads(0);
  CHECK(bitwise_equal(single.features, whole.features));
  CHECK(on_one.fid == on_all.fid);
  CHECK(on_one.kid == on_all.kid);
  CHECK(on_one.precision_recall.precision == on_all.precision_recall.precision);
  CHECK(on_one.precision_recall.recall == on_all.precision_recall.recall);
  CHECK(on_one.classes.counts == on_all.classes.counts);
  CHECK(on_all.classes.entropy_bits > 2.5);  // 150 test images cover the ten classes
}

}  // namespace ddpm::testing
