// The default U-Net's forward and whole training step (diffusion::Trainer, the step of
// `ddpm train`: draws, forward, L_simple, backward, gradient clipping, Adam, EMA) at batch
// 64 and 128, as
// bench/pytorch/bench_unet_step.py times them in PyTorch. Peak resident memory is reported
// as a counter: run one benchmark per process (--benchmark_filter) for a clean figure.
#include <benchmark/benchmark.h>

#include <cmath>

#include "bench/process_usage.hpp"
#include "ddpm/trainer.hpp"
#include "nn/training.hpp"
#include "nn/unet.hpp"
#include "tensor/tensor_library.hpp"

namespace {

using namespace ddpm;
using bench::minor_faults;
using bench::peak_rss_mib;

// The step `ddpm train` takes (diffusion::Trainer: draws, forward, L_simple, backward,
// clipping, Adam, EMA) on a fixed batch, linear schedule, T = 1000; arguments: the batch
// and the micro-batches it runs as (peak_tensor_MiB is this benchmark's own peak; run one
// benchmark per process, --benchmark_filter, for a peak RSS of its own).
void training_step(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  diffusion::TrainerSettings settings;
  settings.micro_batches = state.range(1);
  Generator init(0), data(1);
  nn::UNet model(nn::UNetConfig{}, init);
  const auto parameters = model.named_parameters();
  nn::Adam adam(parameters, 2e-4);
  nn::ExponentialMovingAverage ema(parameters, 0.9999);
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(diffusion::ScheduleKind::Linear, 1000);
  diffusion::Trainer trainer(model, adam, ema, schedule, settings);
  const Tensor images = sub(mul(rand({batch, 1, 28, 28}, data), 2.0), 1.0);
  std::int64_t step = 0;
  reset_peak_memory();
  trainer.step(step++, images, Tensor());  // the first step fills the buffer cache
  const long faults_before = minor_faults();
  for (auto _ : state) benchmark::DoNotOptimize(trainer.step(step++, images, Tensor()).loss);
  state.counters["minor_faults_per_step"] =
      static_cast<double>(minor_faults() - faults_before) / static_cast<double>(state.iterations());
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()), benchmark::Counter::kIsRate);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
  const MemoryStatistics memory = memory_statistics();
  state.counters["peak_tensor_MiB"] = static_cast<double>(memory.peak_live_bytes) / (1 << 20);
  state.counters["cached_MiB"] = static_cast<double>(memory.cached_bytes) / (1 << 20);
}
BENCHMARK(training_step)
    ->ArgNames({"batch", "micro_batches"})
    ->Args({64, 1})
    ->Args({128, 1})
    ->Args({128, 2})
    ->Args({128, 4})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(5.0);

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
