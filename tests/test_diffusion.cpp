// Schedules, the forward process, loss terms and samplers against values computed
// independently (float64 with NumPy, closed forms, an oracle denoiser for Gaussian data).
#include "ddpm/diffusion.hpp"
#include "ddpm/losses.hpp"
#include "ddpm/sampler.hpp"
#include "tests/test_support.hpp"

namespace ddpm::testing {

using namespace ddpm::diffusion;

TEST_CASE("linear and cosine schedules match independently computed values") {
  const NoiseSchedule linear = make_schedule(ScheduleKind::Linear, 1000);
  CHECK(linear.alphas_cumprod[999] == doctest::Approx(4.035829765e-05).epsilon(1e-8));
  CHECK(linear.alphas_cumprod[499] == doctest::Approx(0.0785872).epsilon(1e-6));
  CHECK(linear.posterior_variance[1] == doctest::Approx(5.453187661e-05).epsilon(1e-8));
  CHECK(linear.posterior_log_variance_clipped[0] == doctest::Approx(-9.816725135).epsilon(1e-9));
  CHECK(linear.posterior_mean_coef1[1] == doctest::Approx(0.5452914995).epsilon(1e-9));
  CHECK(linear.posterior_mean_coef2[1] == doctest::Approx(0.454708499).epsilon(1e-8));
  CHECK(linear.posterior_variance[0] == 0.0);
  const NoiseSchedule cosine = make_schedule(ScheduleKind::Cosine, 1000);
  CHECK(cosine.betas[0] == doctest::Approx(4.12842e-05).epsilon(1e-5));
  CHECK(cosine.alphas_cumprod[499] == doctest::Approx(0.493844).epsilon(1e-5));
  CHECK(cosine.betas[999] == doctest::Approx(0.999));
  // T-invariant linear form: T = 250 uses betas 4e-4 .. 0.08.
  const NoiseSchedule short_linear = make_schedule(ScheduleKind::Linear, 250);
  CHECK(short_linear.betas.front() == doctest::Approx(4e-4));
  CHECK(short_linear.betas.back() == doctest::Approx(0.08));
  CHECK(make_schedule(ScheduleKind::Quadratic, 1000).betas.back() == doctest::Approx(0.02));
  CHECK(make_schedule(ScheduleKind::Sigmoid, 1000).betas.front() > 1e-4);
  CHECK_THROWS_WITH_AS(parse_schedule_kind("exp"), doctest::Contains("unknown noise schedule 'exp'"), TensorError);
}

TEST_CASE("respacing keeps ᾱ at the kept steps and remembers the original timesteps") {
  const NoiseSchedule full = make_schedule(ScheduleKind::Linear, 1000);
  const NoiseSchedule fifty = respace(full, 50);
  REQUIRE(fifty.size() == 50);
  CHECK(fifty.timesteps.front() == 0);
  CHECK(fifty.timesteps.back() == 999);
  for (std::int64_t i = 0; i < 50; ++i)
    CHECK(fifty.alphas_cumprod[i] == doctest::Approx(full.alphas_cumprod[fifty.timesteps[i]]).epsilon(1e-12));
  // np.linspace(0, 999, 7) = 0, 166.5, 333, ...: Python rounds 166.5 to 166 (half to even).
  CHECK(respace(full, 7).timesteps[1] == 166);
  CHECK(respace(full, 1000).timesteps == full.timesteps);
}

TEST_CASE("forward process and parameterisation conversions are consistent") {
  const NoiseSchedule s = make_schedule(ScheduleKind::Linear, 1000);
  const Tensor x0 = random_tensor({3, 1, 4, 4}, 1, DType::Float32), noise = random_tensor({3, 1, 4, 4}, 2, DType::Float32);
  const Tensor steps = Tensor::from_vector<std::int64_t>({0, 500, 999}, {3});
  const Tensor xt = q_sample(s, x0, steps, noise);
  CHECK(closeness(x0_from_epsilon(s, xt, steps, noise), x0, 1e-3, 1e-3) <= 1.0);
  CHECK(closeness(epsilon_from_x0(s, xt, steps, x0), noise, 1e-3, 1e-3) <= 1.0);
  const Tensor v = v_from(s, x0, steps, noise);
  CHECK(closeness(x0_from_v(s, xt, steps, v), x0, 1e-4, 1e-4) <= 1.0);
  CHECK(closeness(epsilon_from_v(s, xt, steps, v), noise, 1e-4, 1e-4) <= 1.0);
  // The posterior mean of x_{t-1} given x0 and x_t, at t = 1, by the closed form.
  const Gaussian posterior = q_posterior(s, x0, xt, steps);
  CHECK(posterior.mean.at({1, 0, 2, 3}) ==
        doctest::Approx(s.posterior_mean_coef1[500] * x0.at({1, 0, 2, 3}) + s.posterior_mean_coef2[500] * xt.at({1, 0, 2, 3})));
  CHECK_THROWS_WITH_AS(q_sample(s, x0, Tensor::from_vector<std::int64_t>({0, 1, 1000}, {3}), noise),
                       doctest::Contains("step 1000 is outside the schedule"), TensorError);
}

TEST_CASE("KL terms and the discretised decoder") {
  const Tensor m = random_tensor({5}, 3), lv = random_tensor({5}, 4);
  CHECK(max(abs(normal_kl(m, lv, m, lv))).item() < 1e-15);
  // KL(N(1, 4) || N(0, 1)) = 0.5 (-1 + 0 - ln 4 + 4 + 1)
  const Tensor kl = normal_kl(Tensor::scalar(1.0, DType::Float64), Tensor::scalar(std::log(4.0), DType::Float64),
                              Tensor::scalar(0.0, DType::Float64), Tensor::scalar(0.0, DType::Float64));
  CHECK(kl.item() == doctest::Approx(0.5 * (4.0 - std::log(4.0))));
  // The prior term per dimension for x0 = ±1, in bits.
  const NoiseSchedule s = make_schedule(ScheduleKind::Linear, 1000);
  const double abar = s.alphas_cumprod[999];
  const Tensor prior = normal_kl(Tensor::scalar(std::sqrt(abar), DType::Float64), Tensor::scalar(std::log(1 - abar), DType::Float64),
                                 Tensor::scalar(0.0, DType::Float64), Tensor::scalar(0.0, DType::Float64));
  CHECK(prior.item() / std::log(2.0) == doctest::Approx(2.911e-05).epsilon(1e-3));
  // The decoder's probabilities over the 256 levels sum to 1, whatever the Gaussian.
  for (auto [mean, log_variance] : std::vector<std::pair<double, double>>{{0.0, -4.0}, {0.7, -9.0}, {-0.95, -2.0}, {0.1, 1.0}}) {
    const Tensor levels = sub(div(arange(0, 256, 1, DType::Float64), 127.5), 1.0);
    const Tensor log_probabilities = discretized_gaussian_log_likelihood(levels, full({256}, mean, DType::Float64),
                                                                         full({256}, log_variance, DType::Float64));
    INFO(mean, " ", log_variance);
    CHECK(sum(exp(log_probabilities)).item() == doctest::Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("L_simple has the gradient of a mean squared error") {
  const Tensor noise = random_tensor({2, 1, 3, 3}, 9);
  const auto result = check_gradients([&](const std::vector<Variable>& v) { return simple_loss(v[0], noise); },
                                      {random_tensor({2, 1, 3, 3}, 10)});
  INFO(result.message);
  CHECK(result.passed);
}

namespace {
// The exact ε-prediction for data x0 ~ N(μ, s²) i.i.d.: E[ε | x_t] =
// sqrt(1 - ᾱ) (x_t - sqrt(ᾱ) μ) / (ᾱ s² + 1 - ᾱ).
Denoiser gaussian_oracle(const NoiseSchedule& s, double mu, double sigma) {
  return [&s, mu, sigma](const Tensor& x, const Tensor& timesteps, const Tensor&) {
    const double abar = s.alphas_cumprod[static_cast<std::size_t>(timesteps.to_vector<std::int64_t>()[0])];
    return mul(sub(x, std::sqrt(abar) * mu), std::sqrt(1 - abar) / (abar * sigma * sigma + 1 - abar));
  };
}
}  // namespace

TEST_CASE("with an oracle denoiser, ancestral and DDIM samplers reproduce Gaussian data") {
  const NoiseSchedule s = make_schedule(ScheduleKind::Linear, 1000);
  const double mu = 0.2, sigma = 0.3;
  const Denoiser oracle = gaussian_oracle(s, mu, sigma);
  struct Case {
    const char* name;
    SamplerOptions options;
  };
  std::vector<Case> cases(4);
  cases[0] = {"ancestral, large variance", {}};
  cases[1] = {"ancestral, small variance", {}};
  cases[1].options.variance = Variance::FixedSmall;
  cases[2] = {"DDIM 100 steps, eta 0", {}};
  cases[2].options.ddim = true;
  cases[2].options.steps = 100;
  cases[3] = {"ancestral respaced to 250", {}};
  cases[3].options.steps = 250;
  for (Case& c : cases) {
    c.options.clip_x0 = false;
    c.options.seed = 17;
    const Tensor images = sample(s, oracle, {256, 1, 4, 4}, c.options).images;  // 4096 values
    // Standard errors with 4096 draws: mean 0.0047, std about 0.0033.
    INFO(c.name, ": mean ", mean(images).item(), ", std ", std::sqrt(var(images).item()));
    CHECK(mean(images).item() == doctest::Approx(mu).epsilon(0.1));
    CHECK(std::sqrt(var(images).item()) == doctest::Approx(sigma).epsilon(0.05));
  }
}

TEST_CASE("an oracle predicting ε, x0 or v gives the same samples with every sampler") {
  const NoiseSchedule s = make_schedule(ScheduleKind::Linear, 1000);
  const Denoiser epsilon_oracle = gaussian_oracle(s, 0.2, 0.3);
  // The same oracle, answering in another parameterisation.
  const auto answering = [&](Prediction prediction) -> Denoiser {
    return [&, prediction](const Tensor& x, const Tensor& timesteps, const Tensor& labels) {
      const Tensor eps = epsilon_oracle(x, timesteps, labels);
      const double abar = s.alphas_cumprod[static_cast<std::size_t>(timesteps.to_vector<std::int64_t>()[0])];
      const Tensor x0 = div(sub(x, mul(eps, std::sqrt(1 - abar))), std::sqrt(abar));
      if (prediction == Prediction::X0) return x0;
      if (prediction == Prediction::Velocity) return sub(mul(eps, std::sqrt(abar)), mul(x0, std::sqrt(1 - abar)));
      return eps;
    };
  };
  for (const bool ddim : {false, true}) {
    SamplerOptions options;
    options.ddim = ddim;
    options.steps = ddim ? 50 : 0;
    options.seed = 3;
    const Tensor reference = sample(s, epsilon_oracle, {16, 1, 4, 4}, options).images;
    for (Prediction prediction : {Prediction::X0, Prediction::Velocity}) {
      options.prediction = prediction;
      const Tensor images = sample(s, answering(prediction), {16, 1, 4, 4}, options).images;
      INFO(prediction_name(prediction), ddim ? " DDIM" : " ancestral");
      CHECK(max(abs(sub(images, reference))).item() < 1e-4);
    }
  }
}

TEST_CASE("samples do not depend on how the batch is split") {
  const NoiseSchedule s = make_schedule(ScheduleKind::Linear, 50);
  const Denoiser oracle = gaussian_oracle(s, 0.0, 0.5);
  SamplerOptions options;
  options.seed = 3;
  const Tensor whole = sample(s, oracle, {6, 1, 3, 3}, options).images;
  options.first_image = 0;
  const Tensor first = sample(s, oracle, {2, 1, 3, 3}, options).images;
  options.first_image = 2;
  const Tensor rest = sample(s, oracle, {4, 1, 3, 3}, options).images;
  CHECK(bitwise_equal(concat({first, rest}, 0), whole));
  options.first_image = 0;
  options.record_every = 10;
  const SampleResult recorded = sample(s, oracle, {2, 1, 3, 3}, options);
  CHECK(recorded.trajectory.size() == 6);  // t = 49, 40, 30, 20, 10, 0
  CHECK(bitwise_equal(recorded.images, first));
}

}  // namespace ddpm::testing

#include "ddpm/bits_per_dim.hpp"

namespace ddpm::testing {

TEST_CASE("the variational bound of Gaussian data under the oracle matches its closed form") {
  // Data: N(mu, s²) per pixel, quantised to the 256 levels. With the exact E[ε | x_t], the
  // model's x0 is x̂0 = μ + k (x_t - √ᾱ μ), k = s²√ᾱ / (ᾱ s² + 1 - ᾱ), and each KL term has
  // the closed form (docs/bits-per-dim.md)
  //   L_{t-1} = ½ (-1 + log σ² - log β̃ + β̃/σ² + c1² E(x0 - x̂0)² / σ²),
  //   E(x0 - x̂0)² = (1 - k√ᾱ)² m2 + k² (1 - ᾱ), m2 the data's mean of (x0 - μ)²
  // (the expectation is over the noise; using the data's own m2 removes its sampling error),
  // and the prior KL(N(√ᾱ_T x0, 1 - ᾱ_T) || N(0, 1)) = ½ (-1 - log(1 - ᾱ_T) + 1 - ᾱ_T + ᾱ_T x0²).
  const NoiseSchedule s = make_schedule(ScheduleKind::Linear, 40);
  const double mu = 0.1, sigma = 0.4, ln2 = std::log(2.0);
  Generator data_generator(21);
  const Tensor raw = add(mul(randn({32, 1, 16, 16}, data_generator, DType::Float64), sigma), mu);
  const Tensor x0 = sub(div(minimum(maximum(add(mul(add(raw, 1.0), 127.5), 0.5).to(DType::Int64).to(DType::Float64), 0.0), 255.0), 127.5), 1.0);
  const Denoiser oracle = [&](const Tensor& x, const Tensor& timesteps, const Tensor&) {
    const double abar = s.alphas_cumprod[static_cast<std::size_t>(timesteps.to_vector<std::int64_t>()[0])];
    return mul(sub(x, std::sqrt(abar) * mu), std::sqrt(1 - abar) / (abar * sigma * sigma + 1 - abar));
  };
  const double m2 = mean(square(sub(x0, mu))).item();
  for (Variance variance : {Variance::FixedSmall, Variance::FixedLarge}) {
    const BoundTerms bound = variational_bound(s, oracle, x0, variance, false, 5);
    REQUIRE(bound.terms.shape() == Shape{32, 40});
    double closed_sum = 0, measured_sum = 0;
    for (std::int64_t i = 1; i < 40; ++i) {
      const double abar = s.alphas_cumprod[i], tilde = s.posterior_variance[i];
      const double model_variance = variance == Variance::FixedSmall ? tilde : s.betas[i];
      const double k = sigma * sigma * std::sqrt(abar) / (abar * sigma * sigma + 1 - abar);
      const double conditional = (1 - k * std::sqrt(abar)) * (1 - k * std::sqrt(abar)) * m2 + k * k * (1 - abar);
      const double c1 = s.posterior_mean_coef1[i];
      const double closed = 0.5 * (-1 + std::log(model_variance) - std::log(tilde) + tilde / model_variance +
                                   c1 * c1 * conditional / model_variance) / ln2;
      const double measured = mean(bound.terms.select(1, i)).item();
      closed_sum += closed;
      measured_sum += measured;
      INFO("t index ", i, " closed ", closed, " measured ", measured);
      CHECK(measured == doctest::Approx(closed).epsilon(0.25));
    }
    // The sum is dominated by the first KL term, whose noise part averages ε² over 8192
    // draws: a standard error of 1.6%, so 5% is about three of them.
    CHECK(measured_sum == doctest::Approx(closed_sum).epsilon(0.05));
    // The prior, image by image, from the closed form on the actual data.
    const double abar_T = s.alphas_cumprod.back();
    const auto values = x0.to_vector<double>();
    constexpr std::int64_t pixels = 256;
    for (std::int64_t b = 0; b < 32; ++b) {
      double kl = 0;
      for (std::int64_t p = 0; p < pixels; ++p)
        kl += 0.5 * (-std::log(1 - abar_T) - abar_T + abar_T * values[b * pixels + p] * values[b * pixels + p]);
      CHECK(bound.prior.at({b}) == doctest::Approx(kl / pixels / ln2).epsilon(1e-9));
    }
    // The decoder term against an independent float64 computation with the exact normal CDF.
    const Tensor noise = keyed_noise(5, 0, 0, x0.shape()).to(DType::Float64);
    const auto eps = noise.to_vector<double>();
    const double abar0 = s.alphas_cumprod[0], c1 = s.posterior_mean_coef1[0], c2 = s.posterior_mean_coef2[0];
    const double log_variance = variance == Variance::FixedSmall ? s.posterior_log_variance_clipped[0] : std::log(s.posterior_variance[1]);
    const double deviation = std::exp(0.5 * log_variance);
    auto cdf = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
    for (std::int64_t b = 0; b < 32; ++b) {
      double nll = 0;
      for (std::int64_t p = 0; p < pixels; ++p) {
        const double x = values[b * pixels + p];
        const double xt = std::sqrt(abar0) * x + std::sqrt(1 - abar0) * eps[b * pixels + p];
        const double x0_hat = (sigma * sigma * std::sqrt(abar0) * xt + (1 - abar0) * mu) / (abar0 * sigma * sigma + 1 - abar0);
        const double m = c1 * x0_hat + c2 * xt;
        const double upper = x > 0.999 ? 1.0 : cdf((x + 1 / 255.0 - m) / deviation);
        const double lower = x < -0.999 ? 0.0 : cdf((x - 1 / 255.0 - m) / deviation);
        nll -= std::log(std::max(upper - lower, 1e-12));
      }
      INFO("image ", b);
      CHECK(bound.terms.at({b, 0}) == doctest::Approx(nll / pixels / ln2).epsilon(0.02));
    }
    CHECK(bound.total.at({0}) == doctest::Approx(bound.prior.at({0}) + sum(bound.terms.select(0, 0)).item()));
  }
}

}  // namespace ddpm::testing
