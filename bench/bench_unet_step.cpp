// The default U-Net's forward and whole training step (noise draw, forward, L_simple,
// backward, gradient clipping, Adam, EMA) at batch 64 and 128, as
// bench/pytorch/bench_unet_step.py times them in PyTorch. Peak resident memory is reported
// as a counter: run one benchmark per process (--benchmark_filter) for a clean figure.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cmath>

#include "nn/training.hpp"
#include "nn/unet.hpp"
#include "tensor/tensor_library.hpp"

namespace {

using namespace ddpm;

double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Linear betas 1e-4..0.02, T = 1000: sqrt(ᾱ_t) and sqrt(1 - ᾱ_t).
std::pair<std::vector<double>, std::vector<double>> schedule() {
  std::vector<double> signal(1000), noise(1000);
  double product = 1;
  for (int t = 0; t < 1000; ++t) {
    product *= 1.0 - (1e-4 + (0.02 - 1e-4) * t / 999.0);
    signal[t] = std::sqrt(product);
    noise[t] = std::sqrt(1.0 - product);
  }
  return {signal, noise};
}

void training_step(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  Generator init(0), data(1), dropout(2);
  nn::UNet model(nn::UNetConfig{}, init);
  const auto parameters = model.named_parameters();
  nn::Adam adam(parameters, 2e-4);
  nn::ExponentialMovingAverage ema(parameters, 0.9999);
  const auto [signal, noise_scale] = schedule();
  const Tensor images = sub(mul(rand({batch, 1, 28, 28}, data), 2.0), 1.0);
  for (auto _ : state) {
    const Tensor t = randint(0, 1000, {batch}, data);
    const Tensor noise = randn(images.shape(), data);
    std::vector<float> a(batch), b(batch);
    const auto steps = t.to_vector<std::int64_t>();
    for (std::int64_t i = 0; i < batch; ++i) a[i] = static_cast<float>(signal[steps[i]]), b[i] = static_cast<float>(noise_scale[steps[i]]);
    const Tensor noisy = add(mul(images, Tensor::from_vector(a, {batch, 1, 1, 1})), mul(noise, Tensor::from_vector(b, {batch, 1, 1, 1})));
    adam.zero_grad();
    Variable loss = mean(square(sub(model.forward(Variable(noisy), t, Tensor(), dropout), Variable(noise))));
    loss.backward();
    nn::clip_gradient_norm(parameters, 1.0);
    adam.step();
    ema.update();
    benchmark::DoNotOptimize(loss.value().raw_data());
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
  const MemoryStatistics memory = memory_statistics();
  state.counters["peak_tensor_MiB"] = static_cast<double>(memory.peak_live_bytes) / (1 << 20);
  state.counters["cached_MiB"] = static_cast<double>(memory.cached_bytes) / (1 << 20);
}
BENCHMARK(training_step)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

void forward(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  Generator init(0), data(1), dropout(2);
  nn::UNet model(nn::UNetConfig{}, init);
  model.eval();
  const Tensor x = randn({batch, 1, 28, 28}, data);
  const Tensor t = randint(0, 1000, {batch}, data);
  for (auto _ : state) {
    NoGrad no_grad;
    benchmark::DoNotOptimize(model.forward(Variable(x), t, Tensor(), dropout).value().raw_data());
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}
BENCHMARK(forward)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
