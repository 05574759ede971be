// What `ddpm train` promises about its run directory and checkpoints: a failed step never
// replaces a good checkpoint, every metadata field is checked where it is read, and
// damaged weights are errors, not silent garbage.
#include <filesystem>

#include "ddpm/diffusion.hpp"
#include "ddpm/trainer.hpp"
#include "tests/test_support.hpp"
#include "tools/checkpoint.hpp"
#include "tools/commands.hpp"
#include "tools/idx.hpp"

namespace ddpm::testing {
namespace {

namespace fs = std::filesystem;

struct TinyRun {
  fs::path directory = fs::temp_directory_path() / ("ddpm-run-" + std::to_string(::getpid()));
  tools::TrainOptions options;
  std::string checkpoint = (directory / "out" / "checkpoint.safetensors").string();

  TinyRun() {
    fs::remove_all(directory);
    fs::create_directories(directory);
    std::vector<std::uint8_t> pixels(8 * 8 * 8);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 37 % 256);
    tools::write_idx((directory / "images.idx").string(), {8, 8, 8}, pixels);
    options.run.data = "idx:" + (directory / "images.idx").string();
    options.model.ch = 8;
    options.model.ch_mult = {1, 2};
    options.model.num_res_blocks = 1;
    options.model.attn_resolutions = {};
    options.run.batch = 4;
    options.steps = 2;
    options.quiet = true;
    options.out = (directory / "out").string();
  }
  ~TinyRun() { fs::remove_all(directory); }

  // Rewrites the checkpoint with `change` applied to its tensors and metadata.
  template <class Change>
  void edit_checkpoint(Change&& change) const {
    tools::Checkpoint read = tools::Checkpoint::read(checkpoint);
    change(read.tensors, read.metadata);
    std::vector<std::pair<std::string, Tensor>> tensors(read.tensors.begin(), read.tensors.end());
    write_safetensors(checkpoint, tensors, read.metadata);
  }
};

}  // namespace

TEST_CASE("a non-finite loss stops training before any parameter changes, and the checkpoint stays finite") {
  TinyRun run;
  CHECK(tools::run_train(run.options) == 0);
  // Weights that overflow float32 in the forward pass: the loss of the next step is inf.
  run.edit_checkpoint([](auto& tensors, auto&) { tensors["conv_out.bias"] = full({1}, 1e30); });
  const tools::Checkpoint before = tools::Checkpoint::read(run.checkpoint);
  tools::TrainOptions resume = run.options;
  resume.resume = true;
  resume.steps = 4;
  CHECK_THROWS_WITH_AS(tools::run_train(resume), doctest::Contains("became"), std::runtime_error);
  const tools::Checkpoint after = tools::Checkpoint::read(run.checkpoint);
  CHECK(after.step() == before.step());
  for (const auto& [name, tensor] : before.tensors) {
    INFO(name);
    CHECK(bitwise_equal(after.tensors.at(name), tensor));  // the state before the failed step, unchanged
  }
}

TEST_CASE("a checkpoint's metadata is parsed and range-checked where it is read, naming the field and the file") {
  TinyRun run;
  CHECK(tools::run_train(run.options) == 0);
  const std::vector<std::tuple<std::string, std::string, std::string>> damaged = {
      {"step", "-1", "'step': '-1' is not an integer in [0,"},
      {"step", "abc", "'step': 'abc' is not an integer"},
      {"timesteps", "1", "'timesteps': '1' is not an integer in [2, 100000]"},
      {"lr", "nan", "'lr': 'nan' is not a finite number"},
      {"seed", "-1", "'seed': '-1' is not an integer"},
      {"batch", "0", "'batch': '0' is not an integer in [1, 65536]"},
      {"schedule", "cubic", "'schedule': unknown value 'cubic'"},
      {"loss", "l1", "'loss': unknown value 'l1'"},
      {"lr_schedule", "step", "'lr_schedule': unknown value 'step'"},
      {"micro_batches", "3", "'micro_batches': 3 does not divide the batch of 4"},
      {"micro_batches", "0", "'micro_batches': '0' is not an integer in [1, 4]"},
      {"optim.step", "9e9", "'optim.step': '9e9' is not an integer"}};
  const tools::Checkpoint good = tools::Checkpoint::read(run.checkpoint);
  const std::vector<std::pair<std::string, Tensor>> tensors(good.tensors.begin(), good.tensors.end());
  for (const auto& [field, value, message] : damaged) {
    auto metadata = good.metadata;
    metadata[field] = value;
    write_safetensors(run.checkpoint, tensors, metadata);
    INFO(field, " = ", value);
    CHECK_THROWS_WITH_AS(tools::Checkpoint::read(run.checkpoint), doctest::Contains((run.checkpoint + ": __metadata__ " + message).c_str()),
                         std::runtime_error);
  }
}

TEST_CASE("a header that declares a model larger than its tensors is refused before any model is built") {
  TinyRun run;
  CHECK(tools::run_train(run.options) == 0);
  const tools::Checkpoint good = tools::Checkpoint::read(run.checkpoint);
  auto metadata = good.metadata;
  nn::UNetConfig huge = good.config();
  huge.ch = 1024, huge.num_res_blocks = 16, huge.ch_mult = {1, 2, 4}, huge.image_size = 28, huge.attn_resolutions = {};
  metadata["config"] = huge.to_json();
  write_safetensors(run.checkpoint, {{"conv_in.bias", zeros({8})}}, metadata);
  CHECK_THROWS_WITH_AS(tools::Checkpoint::read(run.checkpoint), doctest::Contains("but the file holds only 8"),
                       std::runtime_error);
}

TEST_CASE("non-finite weights and tensors the model does not have are errors at load, naming the tensor") {
  TinyRun run;
  CHECK(tools::run_train(run.options) == 0);
  run.edit_checkpoint([](auto& tensors, auto&) {
    Tensor damaged = tensors["conv_in.weight"].clone();
    damaged.data<float>()[3] = std::nanf("");
    tensors["conv_in.weight"] = damaged;
  });
  Generator init(0);
  nn::UNet model(tools::Checkpoint::read(run.checkpoint).config(), init);
  CHECK_THROWS_WITH_AS(tools::Checkpoint::read(run.checkpoint).load_into(model, false),
                       doctest::Contains("tensor 'conv_in.weight' holds a non-finite value"), std::runtime_error);
  run.edit_checkpoint([](auto& tensors, auto&) {
    tensors["conv_in.weight"] = zeros(tensors["conv_in.weight"].shape());
    tensors["mid.attn_1.q.weight"] = zeros({8, 8, 1, 1});
  });
  CHECK_THROWS_WITH_AS(tools::Checkpoint::read(run.checkpoint).load_into(model, false),
                       doctest::Contains("unexpected: mid.attn_1.q.weight"), std::runtime_error);
}

TEST_CASE("a model exported with its EMA weights alone loads for sampling, and asking for its raw weights is named") {
  TinyRun run;
  REQUIRE(tools::run_train(run.options) == 0);
  const std::map<std::string, Tensor> ema = tools::Checkpoint::read(run.checkpoint).ema_tensors();
  run.edit_checkpoint([](std::map<std::string, Tensor>& tensors, std::map<std::string, std::string>& metadata) {
    std::erase_if(tensors, [](const auto& entry) { return entry.first.rfind("ema.", 0) != 0; });  // as export-ema-weights.py
    metadata.erase("optim.step");
  });
  const tools::Checkpoint exported = tools::Checkpoint::read(run.checkpoint);
  Generator init(0);
  nn::UNet model(exported.config(), init);
  exported.load_into(model, /*ema=*/true);
  for (const auto& [name, tensor] : model.state_dict()) CHECK(bitwise_equal(tensor, ema.at(name)));
  CHECK_THROWS_WITH(exported.load_into(model, /*ema=*/false), doctest::Contains("only EMA weights"));
}

TEST_CASE("a state with a non-finite value is never written over a checkpoint") {
  TinyRun run;
  CHECK(tools::run_train(run.options) == 0);
  const tools::Checkpoint good = tools::Checkpoint::read(run.checkpoint);
  Generator init(0);
  nn::UNet model(good.config(), init);
  good.load_into(model, false);
  const auto parameters = model.named_parameters();
  nn::Adam adam(parameters, 1e-3);
  nn::ExponentialMovingAverage ema(parameters, 0.9);
  Variable weight = parameters.front().second;
  weight.value().data<float>()[0] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH_AS(tools::write_checkpoint(run.checkpoint, model, adam, ema, good.metadata),
                       doctest::Contains("holds a non-finite value"), std::runtime_error);
  CHECK(bitwise_equal(tools::Checkpoint::read(run.checkpoint).tensors.at(parameters.front().first),
                      good.tensors.at(parameters.front().first)));
}

TEST_CASE("the run directory: an existing run needs --resume or --overwrite, and --resume refuses options that fix the run") {
  TinyRun run;
  CHECK(tools::run_train(run.options) == 0);
  CHECK_THROWS_WITH_AS(tools::run_train(run.options), doctest::Contains("already holds a run"), std::runtime_error);
  tools::TrainOptions overwrite = run.options;
  overwrite.overwrite = true;
  CHECK(tools::run_train(overwrite) == 0);
  tools::TrainOptions resume = run.options;
  resume.resume = true;
  resume.steps = 3;
  resume.run.batch = 8, resume.run.learning_rate = 0.1, resume.model.ch = 16;
  resume.given = {"--batch", "--lr", "--ch", "--steps"};
  for (const char* conflict : {"--ch 16 (checkpoint: 8)", "--batch 8 (checkpoint: 4)", "--lr 0.10000000000000001 (checkpoint: "})
    CHECK_THROWS_WITH_AS(tools::run_train(resume), doctest::Contains(conflict), std::runtime_error);
  resume.given = {"--steps"};  // not given: the checkpoint's values, whatever the defaults say
  CHECK(tools::run_train(resume) == 0);
  CHECK(tools::Checkpoint::read(run.checkpoint).step() == 3);
  CHECK(tools::Checkpoint::read(run.checkpoint).run().settings.batch == 4);
}

}  // namespace ddpm::testing

namespace ddpm::testing {

TEST_CASE("the library's training step: the same bits on 1 and 2 threads, and a non-finite step changes nothing") {
  nn::UNetConfig config;
  config.ch = 8, config.ch_mult = {1, 2}, config.num_res_blocks = 1, config.attn_resolutions = {4};
  config.image_size = 8;
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(diffusion::ScheduleKind::Linear, 50);
  const Tensor images = uniform_tensor({4, 1, 8, 8}, 5, -1.0, 1.0, DType::Float32);
  const auto train = [&](int threads, const Tensor& x0, std::int64_t steps) {
    set_num_threads(threads);
    Generator init(0);
    nn::UNet model(config, init);
    const auto parameters = model.named_parameters();
    nn::Adam adam(parameters, 1e-3);
    nn::ExponentialMovingAverage ema(parameters, 0.9);
    diffusion::Trainer trainer(model, adam, ema, schedule, diffusion::TrainerSettings{});
    std::map<std::string, Tensor> before = model.state_dict();
    for (auto& [name, tensor] : before) tensor = tensor.clone();
    std::string error;
    try {
      for (std::int64_t step = 0; step < steps; ++step) trainer.step(step, x0, Tensor());
    } catch (const diffusion::NonFiniteStep& failure) {
      error = failure.what();
    }
    set_num_threads(0);
    return std::tuple{before, model.state_dict(), error};
  };
  const auto [initial, one_thread, no_error] = train(1, images, 3);
  const auto [unused, two_threads, also_none] = train(2, images, 3);
  CHECK(no_error.empty());
  for (const auto& [name, tensor] : one_thread) {
    INFO(name);
    CHECK(bitwise_equal(tensor, two_threads.at(name)));
  }
  CHECK_FALSE(bitwise_equal(one_thread.at("conv_in.weight"), initial.at("conv_in.weight")));  // it trained

  Tensor damaged = images.clone();
  damaged.data<float>()[7] = std::nanf("");
  const auto [start, after, error] = train(2, damaged, 1);
  CHECK(error.find("loss became") != std::string::npos);
  for (const auto& [name, tensor] : start) {
    INFO(name);
    CHECK(bitwise_equal(tensor, after.at(name)));  // nothing moved
  }
}

TEST_CASE("each prediction target trains: a short run lowers its own L_simple on held-out noise") {
  nn::UNetConfig config;
  config.ch = 8, config.ch_mult = {1, 2}, config.num_res_blocks = 1, config.attn_resolutions = {};
  config.image_size = 8;
  config.dropout = 0.0;
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(diffusion::ScheduleKind::Linear, 100);
  const Tensor images = uniform_tensor({8, 1, 8, 8}, 5, -1.0, 1.0, DType::Float32);
  // A fixed evaluation at moderate noise, where x0 is recoverable (at high noise the best
  // x0 of random images is their mean, a floor no training lowers), with fixed noise.
  const Tensor steps = Tensor::from_vector<std::int64_t>({2, 5, 8, 12, 16, 20, 25, 30}, {8});
  const Tensor noise = uniform_tensor({8, 1, 8, 8}, 6, -1.7, 1.7, DType::Float32);
  const Tensor xt = diffusion::q_sample(schedule, images, steps, noise);
  for (diffusion::Prediction prediction : {diffusion::Prediction::Epsilon, diffusion::Prediction::X0, diffusion::Prediction::Velocity}) {
    Generator init(0), unused(0);
    nn::UNet model(config, init);
    const auto parameters = model.named_parameters();
    nn::Adam adam(parameters, 3e-3);
    nn::ExponentialMovingAverage ema(parameters, 0.9);
    diffusion::TrainerSettings settings;
    settings.learning_rate = 3e-3;
    settings.loss.prediction = prediction;
    diffusion::Trainer trainer(model, adam, ema, schedule, settings);
    const auto held_out_loss = [&] {
      NoGrad no_grad;
      const Variable output = model.forward(Variable(xt), diffusion::model_timesteps(schedule, steps), Tensor(), unused);
      diffusion::TrainingLossOptions options;
      options.prediction = prediction;
      return diffusion::training_loss(schedule, output, images, xt, steps, noise, options).loss.value().item();
    };
    const double before = held_out_loss();
    for (std::int64_t step = 0; step < 200; ++step) trainer.step(step, images, Tensor());
    const double after = held_out_loss();
    INFO(diffusion::prediction_name(prediction), ": ", before, " -> ", after);
    CHECK(after < 0.85 * before);
  }
}

}  // namespace ddpm::testing
