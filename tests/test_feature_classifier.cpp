// The feature network of FID (nn/feature_classifier.hpp): shapes, its loss against an
// independent computation, that it learns, and the fingerprint that names it.
#include <cmath>

#include "tests/test_support.hpp"

#include "nn/feature_classifier.hpp"
#include "nn/optimizer.hpp"

namespace ddpm::testing {

TEST_CASE("the feature classifier maps 28 x 28 images to 128 features and 10 logits, and names bad input") {
  Generator init(3), data(4);
  nn::FeatureClassifier model(init);
  const Variable x(randn({3, 1, 28, 28}, data));
  CHECK(model.features(x).shape() == Shape{3, 128});
  CHECK(model.forward(x).shape() == Shape{3, 10});
  CHECK_THROWS_WITH_AS(model.forward(Variable(zeros({2, 1, 32, 32}))), doctest::Contains("[2, 1, 32, 32]"), TensorError);
}

TEST_CASE("cross_entropy is the mean of -log softmax at the label, computed independently") {
  const std::vector<double> logits = {0.5, -1.0, 2.0, 0.0, 3.0, 1.0};  // two rows of three
  const std::vector<std::int64_t> labels = {2, 0};
  double expected = 0;
  for (int row = 0; row < 2; ++row) {
    double total = 0;
    for (int k = 0; k < 3; ++k) total += std::exp(logits[row * 3 + k]);
    expected += -(logits[row * 3 + labels[row]] - std::log(total)) / 2;
  }
  const Variable loss = nn::cross_entropy(Variable(Tensor::from_vector(logits, {2, 3})),
                                          Tensor::from_vector(labels, {2}));
  CHECK(loss.value().item() == doctest::Approx(expected).epsilon(1e-12));
  CHECK_THROWS_WITH_AS(nn::cross_entropy(Variable(Tensor::from_vector(logits, {2, 3})), Tensor::from_vector<std::int64_t>({2, 3}, {2})),
                       doctest::Contains("label 3"), TensorError);
  CHECK(nn::predicted_classes(Tensor::from_vector<double>({1, 3, 3, 0, -1, -2}, {2, 3})).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{1, 0});  // the first of equal maxima
}

TEST_CASE("the feature classifier learns: two classes of images, separated after a few steps") {
  // Class 0: the top half bright; class 1: the bottom half; plus noise.
  Generator noise(9), init(1);
  const std::int64_t count = 32;
  std::vector<float> pixels = mul(randn({count, 1, 28, 28}, noise), 0.3).to_vector<float>();
  std::vector<std::int64_t> labels;
  for (std::int64_t i = 0; i < count; ++i) {
    labels.push_back(i % 2);
    for (std::int64_t row = i % 2 == 0 ? 0 : 14; row < (i % 2 == 0 ? 14 : 28); ++row)
      for (std::int64_t column = 0; column < 28; ++column) pixels[static_cast<std::size_t>((i * 28 + row) * 28 + column)] += 1.0f;
  }
  const Tensor images = Tensor::from_vector(pixels, {count, 1, 28, 28});
  const Tensor label_tensor = Tensor::from_vector(labels, {count});
  nn::FeatureClassifier model(init);
  nn::Adam adam(model.named_parameters(), 3e-3);
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 25; ++step) {
    Variable loss = nn::cross_entropy(model.forward(Variable(images)), label_tensor);
    if (step == 0) first_loss = loss.value().item();
    last_loss = loss.value().item();
    adam.zero_grad();
    loss.backward();
    adam.step();
  }
  CHECK(last_loss < 0.1 * first_loss);
  NoGrad no_grad;
  CHECK(bitwise_equal(nn::predicted_classes(model.forward(Variable(images)).value()), label_tensor));
}

TEST_CASE("the weights fingerprint is the same for the same weights and changes with any one of them") {
  Generator a(5), b(5), c(6);
  nn::FeatureClassifier first(a), same(b), other(c);
  const std::string fingerprint = nn::weights_fingerprint(first);
  CHECK(fingerprint.size() == 16);
  CHECK(nn::weights_fingerprint(same) == fingerprint);
  CHECK(nn::weights_fingerprint(other) != fingerprint);
  same.head->bias.value().data<float>()[3] += 1e-6f;
  CHECK(nn::weights_fingerprint(same) != fingerprint);
}

}  // namespace ddpm::testing
