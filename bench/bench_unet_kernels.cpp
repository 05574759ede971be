// The U-Net's kernels at batch 64 on the shapes of the default model: every convolution
// (forward, input gradient, weight gradient), GroupNorm+SiLU and attention, with GFLOP/s
// and the fraction of the machine's FMA peak (--peak=GFLOP/s, default: measured at start,
// bench/fma_peak.hpp). bench/pytorch/bench_unet_kernels.py times the same in PyTorch.
#include <benchmark/benchmark.h>

#include <cmath>

#include "bench/fma_peak.hpp"
#include "bench/unet_shapes.hpp"
#include "tensor/tensor_library.hpp"

namespace {

using namespace ddpm;
constexpr std::int64_t batch = 64;
double peak_gflops = 0;  // set in main

enum class Pass { Forward, InputGradient, WeightGradient };

void convolution(benchmark::State& state, bench::ConvolutionShape shape, Pass pass) {
  Generator generator(1);
  const Convolution2dOptions options{shape.stride, shape.kernel / 2, 1};
  const Tensor x = randn({batch, shape.in_channels, shape.size, shape.size}, generator);
  const Tensor w = randn({shape.out_channels, shape.in_channels, shape.kernel, shape.kernel}, generator);
  const Tensor b = randn({shape.out_channels}, generator);
  const std::int64_t out_size = conv2d_output_size(shape.size, shape.kernel, options);
  const Tensor g = randn({batch, shape.out_channels, out_size, out_size}, generator);
  for (auto _ : state) {
    Tensor result;
    if (pass == Pass::Forward) result = conv2d(x, w, b, options);
    else if (pass == Pass::InputGradient) result = conv2d_input_gradient(g, w, x.shape(), options);
    else result = conv2d_weight_gradient(g, x, w.shape(), options);
    benchmark::DoNotOptimize(result.raw_data());
  }
  const double flops = 2.0 * batch * shape.out_channels * out_size * out_size * shape.in_channels * shape.kernel * shape.kernel;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["peak_fraction"] = benchmark::Counter(flops * state.iterations() / 1e9 / peak_gflops, benchmark::Counter::kIsRate);
}

void group_norm_silu(benchmark::State& state, std::int64_t channels, std::int64_t size, bool backward) {
  Generator generator(2);
  const Tensor x = randn({batch, channels, size, size}, generator);
  const Tensor gamma = randn({channels}, generator), beta = randn({channels}, generator);
  const Tensor g = randn(x.shape(), generator);
  const GroupNormOutput forward = group_norm(x, 8, gamma, beta, 1e-5, true);
  for (auto _ : state) {
    if (backward) benchmark::DoNotOptimize(group_norm_backward(g, x, forward.mean, forward.inverse_std, 8, gamma, beta, true).input.raw_data());
    else benchmark::DoNotOptimize(group_norm(x, 8, gamma, beta, 1e-5, true).output.raw_data());
  }
  state.counters["GB/s"] = benchmark::Counter((backward ? 12.0 : 8.0) * x.numel() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void attention_block(benchmark::State& state, std::int64_t channels, std::int64_t size, bool backward) {
  Generator generator(3);
  const std::int64_t length = size * size;
  const Tensor q = randn({batch, length, channels}, generator), k = randn(q.shape(), generator), v = randn(q.shape(), generator);
  const double scale = 1.0 / std::sqrt(static_cast<double>(channels));
  for (auto _ : state) {
    if (backward) benchmark::DoNotOptimize(attention_backward(q, q, k, v, scale).query.raw_data());
    else benchmark::DoNotOptimize(attention(q, k, v, scale).raw_data());
  }
  const double flops = (backward ? 8.0 : 4.0) * batch * length * length * channels;
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]).rfind("--peak=", 0) == 0) peak_gflops = std::stod(argv[i] + 7);
  if (peak_gflops <= 0) peak_gflops = bench::measured_fma_peak(num_threads());
  for (const auto& shape : bench::unet_convolutions()) {
    for (auto [pass, label] : {std::pair{Pass::Forward, "fwd"}, {Pass::InputGradient, "dX"}, {Pass::WeightGradient, "dW"}})
      benchmark::RegisterBenchmark((std::string("conv ") + shape.name + " " + label).c_str(), convolution, shape, pass)
          ->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  for (auto [channels, size] : {std::pair<std::int64_t, std::int64_t>{32, 28}, {64, 14}, {64, 7}, {96, 28}, {128, 14}})
    for (bool backward : {false, true})
      benchmark::RegisterBenchmark(("group_norm_silu " + std::to_string(channels) + "@" + std::to_string(size) +
                                    (backward ? " bwd" : " fwd")).c_str(),
                                   group_norm_silu, channels, size, backward)
          ->UseRealTime()->Unit(benchmark::kMillisecond);
  for (bool backward : {false, true})
    benchmark::RegisterBenchmark((std::string("attention 64@7 ") + (backward ? "bwd" : "fwd")).c_str(), attention_block,
                                 64, 7, backward)
        ->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
