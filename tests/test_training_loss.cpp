// The training losses (simple, vlb, hybrid), the model distribution they share with the
// sampler and the evaluator, and label dropout: values against an independent NumPy
// computation (tests/fixtures/training_loss_values.py), gradients through the checker, and
// the hybrid loss's stop-gradient.
#include <numeric>

#include "ddpm/conditioning.hpp"
#include "ddpm/diffusion.hpp"
#include "ddpm/losses.hpp"
#include "ddpm/training_loss.hpp"
#include "tests/test_support.hpp"

namespace ddpm::testing {

using namespace ddpm::diffusion;

namespace {

// The inputs of training_loss_values.py: B = 4 images of 1x3x2 at steps 0, 1, 500, 999.
struct LossInputs {
  NoiseSchedule schedule = make_schedule(ScheduleKind::Linear, 1000);
  Tensor x0, noise, output, steps, xt;  // output: [B, 2, 3, 2] = (ε_θ, v)
};

LossInputs loss_inputs() {
  LossInputs in;
  std::vector<double> x0(24), noise(24), epsilon(24), v(24);
  for (int i = 0; i < 24; ++i) {
    x0[i] = std::round(std::sin(1.7 * i) * 127.5 + 127.5) / 127.5 - 1.0;
    noise[i] = std::cos(0.9 * i + 0.3);
    epsilon[i] = noise[i] + 0.2 * std::sin(2.3 * i);
    v[i] = std::tanh(std::sin(0.37 * i + 1.0));
  }
  x0[0] = -1.0;
  x0[5] = 1.0;
  in.x0 = Tensor::from_vector(x0, {4, 1, 3, 2});
  in.noise = Tensor::from_vector(noise, {4, 1, 3, 2});
  in.output = concat({Tensor::from_vector(epsilon, {4, 1, 3, 2}), Tensor::from_vector(v, {4, 1, 3, 2})}, 1);
  in.steps = Tensor::from_vector<std::int64_t>({0, 1, 500, 999}, {4});
  in.xt = q_sample(in.schedule, in.x0, in.steps, in.noise);
  return in;
}

TrainingLoss loss_of(const LossInputs& in, const Variable& output, LossType type) {
  TrainingLossOptions options;
  options.type = type;
  return training_loss(in.schedule, output, in.x0, in.xt, in.steps, in.noise, options);
}

void check_values(const Tensor& actual, const std::vector<double>& expected, double tolerance) {
  const auto values = actual.to_vector<double>();
  REQUIRE(values.size() == expected.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    INFO("image ", i);
    CHECK(values[i] == doctest::Approx(expected[i]).epsilon(tolerance));
  }
}

}  // namespace

TEST_CASE("the vlb and hybrid losses match an independent float64 computation") {
  const LossInputs in = loss_inputs();
  const Variable output(in.output);
  const TrainingLoss vlb = loss_of(in, output, LossType::VariationalBound);
  check_values(vlb.per_image, {1.2820537304700938e+03, 2.7025574831661526e+01, 1.8420253331363554e-01, 2.3242157973260971e-01}, 1e-10);
  CHECK(vlb.loss.value().item() == doctest::Approx(327.3739823537004).epsilon(1e-10));
  const TrainingLoss hybrid = loss_of(in, output, LossType::Hybrid);
  check_values(hybrid.mse, {0.01796124706112933, 0.01928670992054166, 0.02315308755949991, 0.01578739144352849}, 1e-12);
  check_values(hybrid.per_image, {1.300014977531223, 0.04631228475220318, 0.02333729009281354, 0.0160198130232611}, 1e-10);
  CHECK(hybrid.loss.value().item() == doctest::Approx(0.34642109134987525).epsilon(1e-10));
  const TrainingLoss simple = loss_of(in, output, LossType::Simple);
  CHECK(simple.loss.value().item() == doctest::Approx(mean(hybrid.mse).item()).epsilon(1e-14));
  CHECK_FALSE(simple.bound.defined());
}

TEST_CASE("the learned-range variance interpolates log β (v = 1) and the clipped log β̃ (v = -1)") {
  const NoiseSchedule s = make_schedule(ScheduleKind::Cosine, 100);
  const Tensor steps = Tensor::from_vector<std::int64_t>({0, 37, 99}, {3});
  const Tensor xt = random_tensor({3, 1, 2, 2}, 5), epsilon = random_tensor({3, 1, 2, 2}, 6);
  for (double v : {1.0, -1.0, 0.0}) {
    const ModelDistribution model = model_distribution(s, Variable(epsilon), Variable(full({3, 1, 2, 2}, v, DType::Float64)),
                                                       xt, steps, Variance::Learned, false);
    for (std::int64_t b = 0; b < 3; ++b) {
      const auto i = static_cast<std::size_t>(steps.to_vector<std::int64_t>()[static_cast<std::size_t>(b)]);
      const double expected = 0.5 * (1 + v) * std::log(s.betas[i]) + 0.5 * (1 - v) * s.posterior_log_variance_clipped[i];
      CHECK(model.log_variance.value().at({b, 0, 1, 0}) == doctest::Approx(expected).epsilon(1e-14));
    }
  }
  // Fixed variances: large takes β̃_1 at index 0, small is the clipped posterior.
  const ModelDistribution large = model_distribution(s, Variable(epsilon), Variable(), xt, steps, Variance::FixedLarge, false);
  CHECK(large.log_variance.value().at({0, 0, 0, 0}) == doctest::Approx(std::log(s.posterior_variance[1])));
  CHECK(large.log_variance.value().at({1, 0, 0, 0}) == doctest::Approx(std::log(s.betas[37])));
  CHECK_THROWS_WITH_AS(split_model_output(Variable(epsilon), xt.shape(), Variance::Learned, "sample"),
                       doctest::Contains("a learned variance needs a model with 2x output channels, got 1"), TensorError);
}

TEST_CASE("gradients of the KL, the decoder, the bound term and the training losses") {
  GradientCheckOptions options;
  options.step = 1e-6;
  options.absolute_tolerance = 1e-6;
  options.relative_tolerance = 1e-5;
  const auto kl = check_gradients([](const std::vector<Variable>& v) { return normal_kl(v[0], v[1], v[2], v[3]); },
                                  {random_tensor({2, 3}, 1), random_tensor({2, 3}, 2), random_tensor({2, 3}, 3),
                                   random_tensor({1, 3}, 4)},
                                  options);
  INFO(kl.message);
  CHECK(kl.passed);
  // The decoder away from the 1e-12 floors: data on the grid, means near it, moderate variances.
  const Tensor levels = sub(div(Tensor::from_vector<double>({0, 3, 128, 200, 252, 255, 17, 90}, {8}), 127.5), 1.0);
  const auto decoder = check_gradients(
      [&](const std::vector<Variable>& v) { return discretized_gaussian_log_likelihood(levels, v[0], v[1]); },
      {add(levels, mul(random_tensor({8}, 5), 0.01)), uniform_tensor({8}, 6, -7.0, -4.0)}, options);
  INFO(decoder.message);
  CHECK(decoder.passed);

  const LossInputs in = loss_inputs();
  for (LossType type : {LossType::Simple, LossType::VariationalBound, LossType::Hybrid}) {
    GradientCheckOptions loss_options = options;
    // The hybrid value depends on ε through the bound, its gradient by design does not:
    // only the v half (channel 1 of [4, 2, 3, 2]) is a true derivative; the ε half is
    // checked by the stop-gradient test below.
    if (type == LossType::Hybrid)
      loss_options.skip = [](const std::vector<Tensor>&, std::size_t, std::int64_t element) { return element / 6 % 2 == 0; };
    const auto result = check_gradients([&](const std::vector<Variable>& v) { return loss_of(in, v[0], type).loss; },
                                        {in.output}, loss_options);
    INFO(loss_type_name(type), ": ", result.message);
    CHECK(result.passed);
  }
  // vlb with a fixed variance: the bound trains the mean alone.
  const auto fixed = check_gradients(
      [&](const std::vector<Variable>& v) { return loss_of(in, v[0], LossType::VariationalBound).loss; },
      {in.output.narrow(1, 0, 1).contiguous()}, options);
  INFO(fixed.message);
  CHECK(fixed.passed);
}

TEST_CASE("x0 and v predictions: L_simple regresses on x0 and on v, and their losses have true gradients") {
  const LossInputs in = loss_inputs();
  const Tensor prediction = in.output.narrow(1, 0, 1).contiguous();
  const auto x0 = in.x0.to_vector<double>(), noise = in.noise.to_vector<double>(), out = prediction.to_vector<double>();
  const auto steps = in.steps.to_vector<std::int64_t>();
  double expected_x0 = 0, expected_v = 0;
  for (std::size_t i = 0; i < x0.size(); ++i) {
    const double abar = in.schedule.alphas_cumprod[static_cast<std::size_t>(steps[i / 6])];
    const double v = std::sqrt(abar) * noise[i] - std::sqrt(1 - abar) * x0[i];  // Salimans & Ho
    expected_x0 += (out[i] - x0[i]) * (out[i] - x0[i]) / 24;
    expected_v += (out[i] - v) * (out[i] - v) / 24;
  }
  for (auto [prediction_kind, expected] : {std::pair{Prediction::X0, expected_x0}, std::pair{Prediction::Velocity, expected_v}}) {
    TrainingLossOptions options;
    options.prediction = prediction_kind;
    const TrainingLoss loss = training_loss(in.schedule, Variable(prediction), in.x0, in.xt, in.steps, in.noise, options);
    CHECK(loss.loss.value().item() == doctest::Approx(expected).epsilon(1e-12));
    GradientCheckOptions check_options;
    check_options.step = 1e-4;  // both losses are near-quadratic in the output, and T · L_t is large
    check_options.absolute_tolerance = 1e-6;
    check_options.relative_tolerance = 1e-5;
    for (LossType type : {LossType::Simple, LossType::VariationalBound}) {
      options.type = type;
      const auto result = check_gradients(
          [&](const std::vector<Variable>& v) { return training_loss(in.schedule, v[0], in.x0, in.xt, in.steps, in.noise, options).loss; },
          {prediction}, check_options);
      INFO(prediction_name(prediction_kind), " ", loss_type_name(type), ": ", result.message);
      CHECK(result.passed);
    }
  }
  // The bound of a model that predicts x0 exactly is the bound of the ε model that predicts
  // the matching noise: the parameterisations describe one distribution.
  TrainingLossOptions from_x0, from_epsilon;
  from_x0.type = from_epsilon.type = LossType::VariationalBound;
  from_x0.prediction = Prediction::X0;
  const Tensor matching_noise = epsilon_from_x0(in.schedule, in.xt, in.steps, prediction);
  const Tensor bound_x0 = training_loss(in.schedule, Variable(prediction), in.x0, in.xt, in.steps, in.noise, from_x0).bound;
  const Tensor bound_eps = training_loss(in.schedule, Variable(matching_noise), in.x0, in.xt, in.steps, in.noise, from_epsilon).bound;
  const auto a = bound_x0.to_vector<double>(), b = bound_eps.to_vector<double>();
  for (std::size_t i = 1; i < a.size(); ++i) CHECK(a[i] == doctest::Approx(b[i]).epsilon(1e-6));  // image 0: step 0, x0 from ε divides by ~1
}

TEST_CASE("the hybrid loss stops the bound's gradient at the mean") {
  const LossInputs in = loss_inputs();
  auto gradient_of = [&](LossType type, double bound_scale) {
    Variable output(in.output, true);
    const TrainingLoss loss = loss_of(in, output, type);
    Variable total = type == LossType::Simple ? loss.loss : mul(loss.loss, bound_scale);
    total.backward();
    return output.grad();
  };
  const Tensor hybrid = gradient_of(LossType::Hybrid, 1.0);
  const Tensor simple = gradient_of(LossType::Simple, 1.0);
  const Tensor bound = gradient_of(LossType::VariationalBound, 0.001);
  // ε half: exactly L_simple's gradient; v half: exactly λ times the bound's.
  CHECK(closeness(hybrid.narrow(1, 0, 1), simple.narrow(1, 0, 1), 1e-15, 1e-12) <= 1);
  CHECK(closeness(hybrid.narrow(1, 1, 1), bound.narrow(1, 1, 1), 1e-15, 1e-12) <= 1);
  // Without the stop, the bound would move the mean too: its own ε-gradient is not zero.
  CHECK(max(abs(bound.narrow(1, 0, 1))).item() > 1e-3);
  CHECK(max(abs(simple.narrow(1, 1, 1))).item() == 0.0);
  CHECK_THROWS_WITH_AS(loss_of(in, Variable(in.output.narrow(1, 0, 1).contiguous()), LossType::Hybrid),
                       doctest::Contains("the hybrid loss trains a learned variance"), TensorError);
}

TEST_CASE("label dropout: the null label at the asked rate, the same for any batch split") {
  const std::int64_t count = 20000;
  std::vector<std::int64_t> values(count);
  for (std::int64_t i = 0; i < count; ++i) values[static_cast<std::size_t>(i)] = i % 10;
  const Tensor labels = Tensor::from_vector(values, {count});
  const Tensor dropped = drop_labels(labels, 0.1, 10, 42, 1000);
  const auto result = dropped.to_vector<std::int64_t>();
  std::int64_t nulls = 0;
  for (std::int64_t i = 0; i < count; ++i) {
    const std::int64_t y = result[static_cast<std::size_t>(i)];
    if (y == 10) ++nulls;
    else CHECK(y == i % 10);
  }
  // Binomial(20000, 0.1): standard deviation 42.
  CHECK(std::abs(static_cast<double>(nulls) - 2000.0) < 5 * 42.4);
  const Tensor second_half = drop_labels(labels.narrow(0, 7000, 13000), 0.1, 10, 42, 1000 + 7000);
  CHECK(bitwise_equal(second_half, dropped.narrow(0, 7000, 13000).contiguous()));
  CHECK(bitwise_equal(drop_labels(labels, 0.0, 10, 42, 0), labels));
  CHECK_THROWS_WITH_AS(drop_labels(labels, 1.5, 10, 42, 0), doctest::Contains("probability must be in [0, 1]"), TensorError);
}

}  // namespace ddpm::testing
