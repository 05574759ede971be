// A batch split into micro-batches and over processes: the draws belong to the image, not
// to the split, and the gradient sum has one fixed tree, so the number of processes never
// changes a bit.
#include <bit>
#include <mutex>

#include "ddpm/gradient_sum.hpp"
#include "ddpm/trainer.hpp"
#include "tests/test_support.hpp"
#include "tests/threaded_processes.hpp"

namespace ddpm::testing {
namespace {

// The tree of ddpm/gradient_sum.hpp written out independently: M = 2^k · q leaves; groups of
// q consecutive leaves summed left to right; groups summed by the perfect binary tree.
float reference_tree(const std::vector<float>& leaves) {
  const std::size_t q = static_cast<std::size_t>(diffusion::odd_part(static_cast<std::int64_t>(leaves.size())));
  std::vector<float> level;
  for (std::size_t g = 0; g < leaves.size(); g += q) {
    float group = leaves[g];
    for (std::size_t i = 1; i < q; ++i) group += leaves[g + i];
    level.push_back(group);
  }
  while (level.size() > 1) {
    std::vector<float> next;
    for (std::size_t i = 0; i < level.size(); i += 2) next.push_back(level[i] + level[i + 1]);
    level = next;
  }
  return level[0];
}

// Leaf m of element e: magnitudes from 1e-4 to 1e4, so that another order of additions
// rounds differently.
float leaf_value(std::int64_t m, std::int64_t e) {
  Generator generator(static_cast<std::uint64_t>(m * 1000 + e));
  const double u = rand({2}, generator, DType::Float64).to_vector<double>()[0];
  return static_cast<float>((u - 0.4) * std::pow(10.0, static_cast<double>((m * 7 + e * 3) % 9) - 4.0));
}

}  // namespace

TEST_CASE("the gradient tree: any power-of-two process count gives the bits of the tree written out") {
  constexpr std::int64_t elements = 64;
  int orders_that_differ = 0;
  for (std::int64_t micro_batches : {1, 2, 3, 4, 6, 8, 12, 16, 24}) {
    std::vector<float> expected(elements);
    for (std::int64_t e = 0; e < elements; ++e) {
      std::vector<float> leaves;
      for (std::int64_t m = 0; m < micro_batches; ++m) leaves.push_back(leaf_value(m, e));
      expected[static_cast<std::size_t>(e)] = reference_tree(leaves);
      float serial = 0;
      for (float leaf : leaves) serial += leaf;
      orders_that_differ += serial != expected[static_cast<std::size_t>(e)];
    }
    for (int processes = 1; processes <= micro_batches; processes *= 2) {
      if ((micro_batches / diffusion::odd_part(micro_batches)) % processes != 0) {
        CHECK_THROWS_WITH_AS(diffusion::first_micro_batch(micro_batches, processes, 0),
                             doctest::Contains("power of two dividing"), TensorError);
        continue;
      }
      CAPTURE(micro_batches);
      CAPTURE(processes);
      std::mutex results;
      std::vector<std::vector<float>> totals(static_cast<std::size_t>(processes));
      run_processes(processes, [&](diffusion::ProcessGroup& group) {
        const std::int64_t mine = micro_batches / group.size();
        const std::int64_t first = diffusion::first_micro_batch(micro_batches, group.size(), group.rank());
        diffusion::MicroBatchSum local(mine, diffusion::odd_part(micro_batches));
        for (std::int64_t m = first; m < first + mine; ++m) {
          std::vector<float> values;
          for (std::int64_t e = 0; e < elements; ++e) values.push_back(leaf_value(m, e));
          // A second "parameter" with no gradient: adds as nothing, stays undefined.
          local.add({Tensor::from_vector(values, {elements}), Tensor()});
        }
        const diffusion::Gradients total = diffusion::sum_over_processes(group, local.total());
        std::lock_guard lock(results);
        CHECK_FALSE(total[1].defined());
        totals[static_cast<std::size_t>(group.rank())] = total[0].to_vector<float>();
      });
      for (const auto& total : totals)
        for (std::int64_t e = 0; e < elements; ++e)
          CHECK(std::bit_cast<std::uint32_t>(total[static_cast<std::size_t>(e)]) ==
                std::bit_cast<std::uint32_t>(expected[static_cast<std::size_t>(e)]));
    }
  }
  CHECK(orders_that_differ > 50);  // the values do tell one order of additions from another
  CHECK_THROWS_WITH_AS(diffusion::first_micro_batch(4, 3, 0), doctest::Contains("3 processes cannot share 4"), TensorError);
}

namespace {
struct TrainedState {
  std::map<std::string, Tensor> parameters, first_gradients;
  std::vector<diffusion::StepStatistics> steps;
};

// Three steps of a tiny class-conditional model with dropout and the hybrid loss.
TrainedState train_tiny(std::int64_t micro_batches, diffusion::ProcessGroup* group = nullptr) {
  nn::UNetConfig config;
  config.ch = 8, config.ch_mult = {1, 2}, config.num_res_blocks = 1, config.attn_resolutions = {4};
  config.image_size = 8, config.dropout = 0.3, config.num_classes = 3, config.learn_sigma = true;
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(diffusion::ScheduleKind::Linear, 50);
  const Tensor images = uniform_tensor({8, 1, 8, 8}, 5, -1.0, 1.0, DType::Float32);
  const Tensor labels = Tensor::from_vector(std::vector<std::int64_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8});
  Generator init(0);
  nn::UNet model(config, init);
  // No zero-initialised layers (the U-Net's output and residual convolutions start at 0,
  // which would stop every gradient but the last layer's at step 0): random weights make
  // the first gradient depend on every draw, dropout masks included.
  std::map<std::string, Tensor> weights = model.state_dict();
  std::uint64_t seed = 100;
  for (auto& [name, tensor] : weights) tensor = mul(random_tensor(tensor.shape(), ++seed, DType::Float32), 0.2);
  model.load_state_dict(weights);
  const auto parameters = model.named_parameters();
  nn::Adam adam(parameters, 1e-3);
  nn::ExponentialMovingAverage ema(parameters, 0.9);
  diffusion::TrainerSettings settings;
  settings.loss.type = diffusion::LossType::Hybrid;
  settings.label_dropout = 0.3;
  settings.micro_batches = micro_batches;
  diffusion::Trainer trainer(model, adam, ema, schedule, settings, group);
  TrainedState state;
  for (std::int64_t step = 0; step < 3; ++step) {
    state.steps.push_back(trainer.step(step, images, labels));
    if (step == 0)  // the batch's (clipped) gradient at the shared initial weights
      for (const auto& [name, parameter] : parameters) state.first_gradients[name] = parameter.grad().clone();
  }
  state.parameters = model.state_dict();
  for (auto& [name, tensor] : state.parameters) tensor = tensor.clone();
  return state;
}
}  // namespace

TEST_CASE("micro-batches: each image draws the same timestep, noise, label and dropout mask; only rounding differs") {
  const TrainedState whole = train_tiny(1);
  for (std::int64_t micro_batches : {2, 4, 8}) {
    CAPTURE(micro_batches);
    const TrainedState split = train_tiny(micro_batches);
    // Step 0 starts from the same weights: every image's loss is that of the whole batch.
    CHECK(split.steps[0].timesteps == whole.steps[0].timesteps);
    for (std::size_t j = 0; j < 8; ++j)
      CHECK(split.steps[0].per_image_loss[j] == doctest::Approx(whole.steps[0].per_image_loss[j]).epsilon(1e-6));
    CHECK(split.steps[0].gradient_norm == doctest::Approx(whole.steps[0].gradient_norm).epsilon(1e-5));
    // Against the largest gradient of all: some (key biases, biases a per-channel norm
    // follows) are zero but for rounding, and their rounding differs.
    double largest = 0;
    for (const auto& [name, gradient] : whole.first_gradients) largest = std::max(largest, max(abs(gradient)).item());
    for (const auto& [name, gradient] : whole.first_gradients) {
      INFO(name);
      CHECK(closeness(split.first_gradients.at(name), gradient, 1e-6 * largest, 1e-4) <= 1);
    }
    // Later steps start from weights that differ by rounding (Adam's normalisation makes
    // near-zero gradients' rounding visible in the weights), so only the losses compare.
    for (std::size_t s = 1; s < 3; ++s) CHECK(split.steps[s].loss == doctest::Approx(whole.steps[s].loss).epsilon(1e-4));
  }
  // A different split of the dropout draws would change the losses far beyond rounding.
  CHECK_THROWS_WITH_AS(train_tiny(3), doctest::Contains("not 3 micro-batches of equal size"), TensorError);
}

TEST_CASE("processes: 1, 2 and 4 of them give the bits of one process with the same micro-batches") {
  const TrainedState alone = train_tiny(4);
  for (int processes : {1, 2, 4}) {
    CAPTURE(processes);
    std::mutex results;
    std::vector<TrainedState> states(static_cast<std::size_t>(processes));
    run_processes(processes, [&](diffusion::ProcessGroup& group) {
      TrainedState state = train_tiny(4, &group);
      std::lock_guard lock(results);
      states[static_cast<std::size_t>(group.rank())] = std::move(state);
    });
    for (const TrainedState& state : states) {
      for (std::size_t s = 0; s < 3; ++s) {
        CHECK(state.steps[s].loss == alone.steps[s].loss);
        CHECK(state.steps[s].gradient_norm == alone.steps[s].gradient_norm);
        CHECK(state.steps[s].per_image_loss == alone.steps[s].per_image_loss);
      }
      for (const auto& [name, tensor] : alone.parameters) {
        INFO(name);
        CHECK(bitwise_equal(state.parameters.at(name), tensor));
      }
    }
  }
}

}  // namespace ddpm::testing
