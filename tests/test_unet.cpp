// The flagship U-Net: names, shapes and count against PyTorch's listing, initialisation
// as docs/unet.md says, and forward/backward parity with our PyTorch module (interop/pytorch).
#include <fstream>
#include <sstream>

#include "nn/safetensors.hpp"
#include "nn/unet.hpp"
#include "tests/test_support.hpp"

namespace ddpm::testing {

TEST_CASE("the default U-Net's parameters match PyTorch's listing line for line") {
  std::ifstream listing(DDPM_TEST_FIXTURES "/torch_unet_params.txt");
  REQUIRE(listing);
  std::string header;
  std::getline(listing, header);
  Generator generator(0);
  const nn::UNet model(nn::UNetConfig{}, generator);
  const auto parameters = model.named_parameters();
  std::size_t index = 0;
  for (std::string line; std::getline(listing, line); ++index) {
    std::istringstream fields(line);
    std::string name, shape, count;
    std::getline(fields, name, '\t');
    std::getline(fields, shape, '\t');
    std::getline(fields, count, '\t');
    REQUIRE(index < parameters.size());
    INFO("line ", index + 2, ": ", line);
    CHECK(parameters[index].first == name);
    CHECK(shape_string(parameters[index].second.shape()) == shape);
  }
  CHECK(index == parameters.size());
  CHECK(parameters.size() == 268);
  CHECK(model.parameter_count() == 1623169);
  CHECK(header.find("1623169 parameters in 268 tensors") != std::string::npos);
}

TEST_CASE("initialisation follows the spec: zeros where the reference zeroes, PyTorch bounds elsewhere") {
  Generator generator(3);
  nn::UNetConfig config;
  config.num_classes = 10;
  const nn::UNet model(config, generator);
  const auto state = model.state_dict();
  for (const auto& [name, parameter] : model.named_parameters()) {
    const bool zeroed = name.find(".conv2.") != std::string::npos || name.find(".proj.") != std::string::npos ||
                        name.rfind("conv_out.", 0) == 0;
    const double largest = max(abs(parameter.value())).item();
    INFO(name);
    if (zeroed) {
      CHECK(largest == 0.0);
    } else if (name.find("norm") != std::string::npos) {
      CHECK(largest == (name.ends_with(".weight") ? 1.0 : 0.0));
    } else if (name == "label_embed.weight") {
      CHECK(parameter.shape() == Shape{11, 128});
      CHECK(std::abs(mean(parameter.value()).item()) < 0.05);
      CHECK(var(parameter.value()).item() == doctest::Approx(1.0).epsilon(0.1));
    } else {
      // kaiming-uniform(a = sqrt 5) and the bias both stay within 1/sqrt(fan_in).
      const Shape& weight_shape = name.ends_with(".bias") ? state.at(name.substr(0, name.size() - 4) + "weight").shape()
                                                           : parameter.shape();
      std::int64_t fan_in = 1;
      for (std::size_t i = 1; i < weight_shape.size(); ++i) fan_in *= weight_shape[i];
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      CHECK(largest <= bound);
      if (parameter.numel() > 100) CHECK(largest > 0.9 * bound);
    }
  }
}

TEST_CASE("the U-Net runs forward and backward at the default size, with the right shapes") {
  Generator generator(1), dropout(2);
  nn::UNetConfig config;
  config.learn_sigma = true;
  const nn::UNet model(config, generator);
  Generator data(5);
  const Variable x(randn({2, 1, 28, 28}, data));
  const Variable out = model.forward(x, Tensor::from_vector<std::int64_t>({0, 999}, {2}), Tensor(), dropout);
  CHECK(out.shape() == Shape{2, 2, 28, 28});
  mean(square(out)).backward();
  for (const auto& [name, parameter] : model.named_parameters()) {
    INFO(name);
    CHECK(parameter.has_grad());
  }
  CHECK_THROWS_WITH_AS(model.forward(Variable(zeros({2, 1, 27, 27})), Tensor::from_vector<std::int64_t>({0, 1}, {2}), Tensor(), dropout),
                       doctest::Contains("input must be [B, 1, 28, 28], got [2, 1, 27, 27]"), TensorError);
}

TEST_CASE("sampling's fused inference ops give the recorded forward's values bit for bit") {
  // Without a graph the block convolutions normalise their input as they copy it, add the
  // time embedding as they write, and the up-sampling convolutions read the small planes;
  // recorded, the same model runs the ops one by one. Every parameter is random (the
  // initialisation zeroes the last convolution of each block), so each fused op shows.
  Generator generator(3), dropout(4);
  nn::UNet model(nn::UNetConfig{}, generator);
  model.eval();
  std::uint64_t seed = 900;
  for (auto& [name, parameter] : model.named_parameters()) {
    Variable target = parameter;
    target.value().copy_(mul(random_tensor(target.shape(), ++seed, DType::Float32), 0.2));
  }
  Generator data(5);
  const Variable x(randn({3, 1, 28, 28}, data));
  const Tensor t = Tensor::from_vector<std::int64_t>({0, 500, 999}, {3});
  const Variable recorded = model.forward(x, t, Tensor(), dropout);
  REQUIRE(recorded.requires_grad());
  NoGrad no_grad;
  const Variable inferred = model.forward(x, t, Tensor(), dropout);
  CHECK_FALSE(inferred.requires_grad());
  CHECK(bitwise_equal(recorded.value(), inferred.value()));
  CHECK(max(abs(inferred.value())).item() > 0.1);
}

TEST_CASE("Linear folds leading axes into rows: the values of applying it to each row") {
  Generator generator(7);
  const nn::Linear linear(16, 24, generator);
  const Tensor x = random_tensor({3, 5, 16}, 8, DType::Float32);
  const Tensor folded = linear.forward(Variable(x)).value();
  CHECK(folded.shape() == Shape{3, 5, 24});
  for (std::int64_t b = 0; b < 3; ++b)
    CHECK(bitwise_equal(folded.narrow(0, b, 1).reshape({5, 24}), linear.forward(Variable(x.narrow(0, b, 1).reshape({5, 16}))).value()));
  // A view that is not contiguous (the attention block's [B, HW, C] of an NCHW tensor) too.
  const Tensor strided = random_tensor({3, 16, 5}, 9, DType::Float32).transpose(1, 2);
  CHECK(bitwise_equal(linear.forward(Variable(strided)).value(), linear.forward(Variable(strided.contiguous())).value()));
}

TEST_CASE("load_state_dict reports every missing, unexpected and mis-shaped tensor at once") {
  Generator generator(0);
  nn::UNet model(nn::UNetConfig{}, generator);
  auto tensors = model.state_dict();
  tensors.erase("conv_in.weight");
  tensors.erase("mid.attn.q.bias");
  tensors["norm_out.weight"] = ones({7});
  tensors["extra.weight"] = ones({1});
  try {
    model.load_state_dict(tensors);
    FAIL("no error");
  } catch (const TensorError& error) {
    const std::string message = error.what();
    CHECK(message.find("4 problem(s)") != std::string::npos);
    CHECK(message.find("missing: conv_in.weight [32, 1, 3, 3]") != std::string::npos);
    CHECK(message.find("missing: mid.attn.q.bias") != std::string::npos);
    CHECK(message.find("wrong shape: norm_out.weight expected [32], got [7]") != std::string::npos);
    CHECK(message.find("unexpected: extra.weight") != std::string::npos);
  }
}

TEST_CASE("a checkpoint of another configuration gets five problems and a count, not hundreds of lines") {
  Generator generator(0);
  nn::UNetConfig other;
  other.ch = 16;
  nn::UNet model(nn::UNetConfig{}, generator), smaller(other, generator);
  try {
    model.load_state_dict(smaller.state_dict());
    FAIL("no error");
  } catch (const TensorError& error) {
    const std::string message = error.what();
    CHECK(std::count(message.begin(), message.end(), '\n') == 6);  // five problems and the count
    CHECK(message.find("more") != std::string::npos);
  }
}

TEST_CASE("the parameter count of a configuration, computed without building it, is the model's") {
  std::vector<nn::UNetConfig> configs(5);
  configs[1].ch = 16, configs[1].ch_mult = {1, 2}, configs[1].attn_resolutions = {};
  configs[2].num_classes = 10, configs[2].learn_sigma = true, configs[2].in_channels = 3;
  configs[3].ch_mult = {1, 2, 4, 4}, configs[3].image_size = 32, configs[3].attn_resolutions = {16, 8}, configs[3].num_res_blocks = 1;
  configs[4].ch = 8, configs[4].ch_mult = {3, 1}, configs[4].attn_resolutions = {28, 14}, configs[4].num_res_blocks = 3;
  for (const nn::UNetConfig& config : configs) {
    Generator generator(0);
    INFO(config.to_json());
    CHECK(config.parameter_count() == nn::UNet(config, generator).parameter_count());
  }
}

TEST_CASE("config JSON is the PyTorch module's and invalid configs are refused by field") {
  nn::UNetConfig config;
  CHECK(config.to_json() ==
        R"({"attn_resolutions":[7],"ch":32,"ch_mult":[1,2,2],"dropout":0.1,"image_size":28,"in_channels":1,"learn_sigma":false,"num_classes":0,"num_res_blocks":2})");
  const nn::UNetConfig parsed = nn::UNetConfig::from_json(
      R"({"attn_resolutions": [7], "ch": 32, "ch_mult": [1, 2, 2], "dropout": 0.1, "image_size": 28, "in_channels": 1, "learn_sigma": false, "num_classes": 0, "num_res_blocks": 2})");
  CHECK(parsed.to_json() == config.to_json());
  config.ch = 12;
  CHECK_THROWS_WITH_AS(config.validate(), doctest::Contains("ch must be a multiple of 8"), TensorError);
  config.ch = 8192;  // past any model here: the bound keeps sizes computed from a file within 64 bits
  CHECK_THROWS_WITH_AS(config.validate(), doctest::Contains("in [8, 4096], got 8192"), TensorError);
  config.ch = 32;
  config.attn_resolutions = {99};
  CHECK_THROWS_WITH_AS(config.validate(), doctest::Contains("attention resolution 99 is not one of the model's resolutions ([28, 14, 7])"),
                       TensorError);
  config.attn_resolutions = {7};
  config.image_size = 27;
  CHECK_THROWS_WITH_AS(config.validate(), doctest::Contains("cannot be halved"), TensorError);
  CHECK_THROWS_WITH_AS(nn::UNetConfig::from_json("{\"ch\": 32}"), doctest::Contains("cannot read configuration"),
                       TensorError);
}

}  // namespace ddpm::testing

namespace ddpm::testing {

TEST_CASE("forward output and every parameter gradient match our PyTorch module") {
  const SafetensorsContents fixture = read_safetensors(DDPM_TEST_FIXTURES "/unet_parity.safetensors");
  const nn::UNetConfig config = nn::UNetConfig::from_json(fixture.metadata.at("config"));
  Generator generator(0), dropout(0);
  nn::UNet model(config, generator);
  std::map<std::string, Tensor> parameters;
  for (const auto& [name, tensor] : fixture.tensors)
    if (name.rfind("param.", 0) == 0) parameters[name.substr(6)] = tensor;
  model.load_state_dict(parameters);

  const Variable out = model.forward(Variable(*fixture.find("input.x")), *fixture.find("input.t"),
                                     *fixture.find("input.y"), dropout);
  const Tensor& expected = *fixture.find("output");
  // Relative error: against the tensor's largest magnitude, at most 1e-4.
  auto relative_error = [](const Tensor& ours, const Tensor& theirs) {
    const double scale = std::max(max(abs(theirs)).item(), 1e-30);
    return max(abs(sub(ours, theirs))).item() / scale;
  };
  CHECK(relative_error(out.value(), expected) <= 1e-4);
  Variable(out).backward(*fixture.find("loss_weights"));
  // The attention keys' bias has an exactly zero gradient (softmax ignores a constant
  // added to every score of a row): both sides hold rounding noise there, so each
  // tensor's scale is floored at 1e-3 of the largest gradient in the model.
  double largest_gradient = 0;
  for (const auto& [name, tensor] : fixture.tensors)
    if (name.rfind("grad.", 0) == 0) largest_gradient = std::max(largest_gradient, max(abs(tensor)).item());
  int compared = 0;
  for (const auto& [name, parameter] : model.named_parameters()) {
    const Tensor* gradient = fixture.find("grad." + name);
    REQUIRE(gradient != nullptr);
    const double scale = std::max(max(abs(*gradient)).item(), 1e-3 * largest_gradient);
    const double error = max(abs(sub(parameter.grad(), *gradient))).item() / scale;
    INFO(name, " relative error ", error);
    CHECK(error <= 1e-4);
    ++compared;
  }
  CHECK(compared == static_cast<int>(model.named_parameters().size()));
  CHECK(compared > 60);
}

}  // namespace ddpm::testing
