// Optimizers against PyTorch 1.13 (values printed by torch.optim for the same loss and
// settings), clipping, EMA, schedules, exact resume, and small models that must learn.
#include "nn/layers.hpp"
#include "nn/training.hpp"
#include "tests/test_support.hpp"

namespace ddpm::testing {
namespace {

// loss = Σ w (p - target)², the problem the PyTorch values below were computed on.
template <class MakeOptimizer>
std::vector<float> run_five_steps(MakeOptimizer&& make) {
  Variable p(Tensor::from_vector<float>({0.5f, -1.0f, 2.0f, 0.25f, -0.75f, 1.5f}, {2, 3}), true);
  const Variable target(Tensor::from_vector<float>({1, 0, -1, 2, 0.5f, 0}, {2, 3}));
  const Variable w(Tensor::from_vector<float>({1, 2, 0.5f, 3, 1, 0.25f}, {2, 3}));
  auto optimizer = make(nn::NamedParameters{{"p", p}});
  for (int step = 0; step < 5; ++step) {
    optimizer.zero_grad();
    sum(mul(square(sub(p, target)), w)).backward();
    optimizer.step();
  }
  return p.value().to_vector<float>();
}

void check_close(const std::vector<float>& ours, const std::vector<float>& pytorch) {
  REQUIRE(ours.size() == pytorch.size());
  for (std::size_t i = 0; i < ours.size(); ++i) CHECK(ours[i] == doctest::Approx(pytorch[i]).epsilon(5e-7));
}

}  // namespace

TEST_CASE("Adam, AdamW and SGD follow PyTorch's update rules step by step") {
  check_close(run_five_steps([](auto p) { return nn::Adam(p, 0.1); }),
              {0.972185493f, -0.507963717f, 1.50177944f, 0.746472597f, -0.255662829f, 1.00435817f});
  check_close(run_five_steps([](auto p) { return nn::Adam(p, 0.05, 0.8, 0.99, 1e-6, 0.1); }),
              {0.742463648f, -0.752663195f, 1.75080299f, 0.498573661f, -0.502092898f, 1.25166082f});
  check_close(run_five_steps([](auto p) { return nn::AdamW(p, 0.05, 0.1); }),
              {0.731510043f, -0.729393899f, 1.70347166f, 0.490613341f, -0.485128969f, 1.2164048f});
  check_close(run_five_steps([](auto p) { return nn::SGD(p, 0.05); }),
              {0.704755068f, -0.327679962f, 1.32134283f, 1.70587754f, -0.238112479f, 1.32164347f});
  check_close(run_five_steps([](auto p) { return nn::SGD(p, 0.05, 0.9, 0.01); }),
              {1.01135743f, 0.582192421f, 0.241962001f, 3.35657382f, 0.53867209f, 1.02684796f});
  check_close(run_five_steps([](auto p) { return nn::SGD(p, 0.05, 0.9, 0, true); }),
              {1.05229092f, 0.415717542f, -0.0521730855f, 2.60874128f, 0.630727112f, 0.930473208f});
}

TEST_CASE("one Adam step by hand: the first update moves each weight by lr·sign(g)") {
  // m = (1-β1) g, v = (1-β2) g², m̂ = g, v̂ = g², so Δ = -lr g / (|g| + eps).
  Variable p(Tensor::from_vector<float>({1.0f, -2.0f}, {2}), true);
  p.set_grad(Tensor::from_vector<float>({0.5f, -3.0f}, {2}));
  nn::Adam adam({{"p", p}}, 0.01);
  adam.step();
  CHECK(p.value().to_vector<float>()[0] == doctest::Approx(1.0 - 0.01 * 0.5 / (0.5 + 1e-8)));
  CHECK(p.value().to_vector<float>()[1] == doctest::Approx(-2.0 + 0.01));
}

TEST_CASE("gradient clipping returns the norm and scales as torch.nn.utils.clip_grad_norm_") {
  Variable a(zeros({2}), true), b(zeros({1, 1}), true);
  a.set_grad(Tensor::from_vector<float>({3, 4}, {2}));
  b.set_grad(Tensor::from_vector<float>({12}, {1, 1}));
  const nn::NamedParameters parameters{{"a", a}, {"b", b}};
  CHECK(nn::clip_gradient_norm(parameters, 100.0) == doctest::Approx(13.0));
  CHECK(a.grad().to_vector<float>() == std::vector<float>{3, 4});  // under the limit: untouched
  CHECK(nn::clip_gradient_norm(parameters, 6.5) == doctest::Approx(13.0));
  CHECK(a.grad().to_vector<float>()[0] == doctest::Approx(1.4999998807907104));  // PyTorch's values
  CHECK(b.grad().to_vector<float>()[0] == doctest::Approx(5.999999523162842));
}

TEST_CASE("EMA warms up as min(d, (1+n)/(10+n)) and swaps in and out") {
  Variable p(full({3}, 1.0), true);
  nn::ExponentialMovingAverage ema({{"p", p}}, 0.9999);
  CHECK(ema.current_decay() == doctest::Approx(0.1));
  p.value().fill_(2.0);
  ema.update();  // shadow = 0.1·1 + 0.9·2
  CHECK(ema.state_tensors("ema.")[0].second.to_vector<float>()[0] == doctest::Approx(1.9));
  CHECK(ema.current_decay() == doctest::Approx(2.0 / 11.0));
  nn::ExponentialMovingAverage late({{"p", p}}, 0.5);
  late.load_state_tensors({{"e.p", full({3}, 4.0)}}, "e.", 1000);
  CHECK(late.current_decay() == 0.5);
  late.swap();
  CHECK(p.value().to_vector<float>()[0] == 4.0f);
  late.swap();
  CHECK(p.value().to_vector<float>()[0] == 2.0f);
}

TEST_CASE("learning-rate schedules") {
  using nn::LearningRateSchedule;
  CHECK(nn::scheduled_learning_rate(LearningRateSchedule::Constant, 0.1, 0, 10, 100) == 0.1);
  CHECK(nn::scheduled_learning_rate(LearningRateSchedule::LinearWarmup, 0.1, 0, 10, 100) == doctest::Approx(0.01));
  CHECK(nn::scheduled_learning_rate(LearningRateSchedule::LinearWarmup, 0.1, 50, 10, 100) == doctest::Approx(0.1));
  CHECK(nn::scheduled_learning_rate(LearningRateSchedule::CosineWarmup, 0.1, 10, 10, 110) == doctest::Approx(0.1));
  CHECK(nn::scheduled_learning_rate(LearningRateSchedule::CosineWarmup, 0.1, 60, 10, 110) == doctest::Approx(0.05));
  CHECK(nn::scheduled_learning_rate(LearningRateSchedule::CosineWarmup, 0.1, 110, 10, 110) == doctest::Approx(0.0));
  CHECK_THROWS_WITH_AS(nn::parse_learning_rate_schedule("step"), doctest::Contains("unknown learning-rate schedule 'step'"), TensorError);
}

namespace {
// A small conv net (conv -> GroupNorm+SiLU -> conv -> mean-pool -> linear) on a fixed
// batch, trained with Adam; returns the losses and the final weights.
std::pair<std::vector<double>, Tensor> train_conv_net(int steps, int threads) {
  set_num_threads(threads);
  Generator init(11), data(12);
  nn::Conv2d conv1(1, 8, 3, 1, 1, init), conv2(8, 8, 3, 2, 1, init);
  nn::GroupNorm norm(4, 8);
  nn::Linear head(8, 4, init);
  nn::NamedParameters parameters;
  for (nn::Module* module : std::initializer_list<nn::Module*>{&conv1, &norm, &conv2, &head})
    for (auto& entry : module->named_parameters()) parameters.push_back(entry);
  const Variable images(randn({16, 1, 8, 8}, data));
  const Variable targets(randn({16, 4}, data));
  nn::Adam adam(parameters, 0.02);
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    adam.zero_grad();
    Variable h = conv2.forward(norm.forward(conv1.forward(images), true));
    Variable pooled = mean(h, {2, 3});
    Variable loss = mean(square(sub(head.forward(pooled), targets)));
    loss.backward();
    nn::clip_gradient_norm(parameters, 10.0);
    adam.step();
    losses.push_back(loss.value().item());
  }
  std::vector<Tensor> weights;
  for (auto& [name, parameter] : parameters) weights.push_back(parameter.value().flatten());
  set_num_threads(0);
  return {losses, concat(weights, 0)};
}
}  // namespace

TEST_CASE("an MLP and a small conv net overfit a fixed batch, with the same bits on 1 and 2 threads") {
  // MLP: 2 -> 32 -> 1 on 64 points of a smooth function.
  Generator init(1), data(2);
  nn::Linear first(2, 32, init), second(32, 1, init);
  nn::NamedParameters parameters = first.named_parameters();
  for (auto& entry : second.named_parameters()) parameters.push_back(entry);
  const Tensor x = randn({64, 2}, data);
  const Tensor y = tanh(sub(mul(x.narrow(1, 0, 1), 1.5), mul(x.narrow(1, 1, 1), x.narrow(1, 1, 1))));
  nn::Adam adam(parameters, 0.01);
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 1500; ++step) {
    adam.zero_grad();
    Variable loss = mean(square(sub(second.forward(silu(first.forward(Variable(x)))), Variable(y))));
    loss.backward();
    adam.step();
    (step == 0 ? first_loss : last_loss) = loss.value().item();
  }
  CHECK(last_loss < first_loss / 100);

  const auto [losses_one, weights_one] = train_conv_net(300, 1);
  const auto [losses_two, weights_two] = train_conv_net(300, 2);
  CHECK(losses_one.back() < losses_one.front() / 100);
  CHECK(losses_one == losses_two);
  CHECK(bitwise_equal(weights_one, weights_two));
}

TEST_CASE("optimizer and EMA state round-trip: a resumed run continues exactly") {
  auto make = [] {
    Generator init(5);
    return std::make_shared<nn::Linear>(3, 2, init);
  };
  const Tensor x = Tensor::from_vector<float>({1, 2, 3, -1, 0.5f, 2}, {2, 3});
  auto train = [&](nn::Linear& layer, nn::Adam& adam, nn::ExponentialMovingAverage& ema, int steps) {
    for (int i = 0; i < steps; ++i) {
      adam.zero_grad();
      sum(square(layer.forward(Variable(x)))).backward();
      adam.step();
      ema.update();
    }
  };
  auto straight = make();
  nn::Adam adam(straight->named_parameters(), 0.05);
  nn::ExponentialMovingAverage ema(straight->named_parameters(), 0.9);
  train(*straight, adam, ema, 3);
  // Save everything, then finish in a fresh model restored from the saved state.
  std::map<std::string, Tensor> saved;
  for (auto& [name, tensor] : straight->state_dict()) saved[name] = tensor.clone();
  for (auto& [name, tensor] : adam.state_tensors("optim.")) saved[name] = tensor.clone();
  for (auto& [name, tensor] : ema.state_tensors("ema.")) saved[name] = tensor.clone();
  train(*straight, adam, ema, 4);

  auto resumed = make();
  std::map<std::string, Tensor> weights;
  for (auto& [name, tensor] : saved)
    if (name.find('.') == std::string::npos || (name.rfind("optim.", 0) != 0 && name.rfind("ema.", 0) != 0)) weights[name] = tensor;
  resumed->load_state_dict(weights);
  nn::Adam resumed_adam(resumed->named_parameters(), 0.05);
  resumed_adam.load_state_tensors(saved, "optim.", 3);
  nn::ExponentialMovingAverage resumed_ema(resumed->named_parameters(), 0.9);
  resumed_ema.load_state_tensors(saved, "ema.", 3);
  train(*resumed, resumed_adam, resumed_ema, 4);
  CHECK(bitwise_equal(resumed->weight.value(), straight->weight.value()));
  CHECK(bitwise_equal(resumed->bias.value(), straight->bias.value()));
  CHECK(bitwise_equal(resumed_ema.state_tensors("e.")[0].second, ema.state_tensors("e.")[0].second));
  CHECK_THROWS_WITH_AS(resumed_adam.load_state_tensors({}, "optim.", 1), doctest::Contains("optim.exp_avg.weight is missing"),
                       TensorError);
}

}  // namespace ddpm::testing
