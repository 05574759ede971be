// Sampling and evaluation of the default U-Net: one ancestral step and one DDIM step at
// batch 64 (ddpm::diffusion::sample over a respaced 10-step schedule, divided by 10: a
// step is one model call plus the update and its keyed noise), and the bits/dim
// evaluator's throughput. The PyTorch figure to compare: an ancestral step of our PyTorch
// module (bench/pytorch/bench_unet_step.py --mode sample).
#include <benchmark/benchmark.h>

#include <chrono>

#include "bench/process_usage.hpp"
#include "ddpm/bits_per_dim.hpp"
#include "ddpm/sampler.hpp"
#include "nn/unet.hpp"
#include "tensor/tensor_library.hpp"

namespace {

using namespace ddpm;

struct Model {
  Generator init{0}, unused{1};
  nn::UNet unet{nn::UNetConfig{}, init};
  Model() { unet.eval(); }
  diffusion::Denoiser denoiser() {
    return [this](const Tensor& x, const Tensor& t, const Tensor& y) {
      NoGrad no_grad;
      return unet.forward(Variable(x), t, y, unused).value();
    };
  }
};

constexpr std::int64_t kSteps = 10;

void sampling_step(benchmark::State& state, bool ddim) {
  const std::int64_t batch = state.range(0);
  Model model;
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(diffusion::ScheduleKind::Linear, 1000);
  diffusion::SamplerOptions options;
  options.steps = kSteps;
  options.ddim = ddim;
  double seconds = 0;
  benchmark::DoNotOptimize(diffusion::sample(schedule, model.denoiser(), {batch, 1, 28, 28}, options).images.raw_data());
  const long faults_before = bench::minor_faults();  // after a first run has filled the buffer cache
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const auto result = diffusion::sample(schedule, model.denoiser(), {batch, 1, 28, 28}, options);
    benchmark::DoNotOptimize(result.images.raw_data());
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  // The time of one step: each iteration is kSteps of them.
  state.counters["step_ms"] = seconds * 1e3 / static_cast<double>(state.iterations() * kSteps);
  state.counters["minor_faults_per_step"] =
      static_cast<double>(bench::minor_faults() - faults_before) / static_cast<double>(state.iterations() * kSteps);
  state.counters["peak_rss_MiB"] = bench::peak_rss_mib();
  state.counters["images_steps/s"] = benchmark::Counter(static_cast<double>(batch * kSteps * state.iterations()), benchmark::Counter::kIsRate);
}
void ancestral_step(benchmark::State& state) { sampling_step(state, false); }
void ddim_step(benchmark::State& state) { sampling_step(state, true); }
BENCHMARK(ancestral_step)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);
BENCHMARK(ddim_step)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

// End to end: 64 images drawn with DDIM, 50 steps (η = 0) from T = 1000, or by the
// ancestral sampler through all 1000 steps: every model call, update and draw of
// `ddpm sample --sampler ddim --steps 50` (or `--sampler ancestral`), in seconds per run.
void whole_run(benchmark::State& state, bool ddim, std::int64_t steps) {
  const std::int64_t batch = state.range(0);
  Model model;
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(diffusion::ScheduleKind::Linear, 1000);
  diffusion::SamplerOptions options;
  options.steps = steps;
  options.ddim = ddim;
  for (auto _ : state) {
    const auto result = diffusion::sample(schedule, model.denoiser(), {batch, 1, 28, 28}, options);
    benchmark::DoNotOptimize(result.images.raw_data());
  }
  state.counters["peak_rss_MiB"] = bench::peak_rss_mib();
}
void ddim_50_run(benchmark::State& state) { whole_run(state, true, 50); }
void ancestral_1000_run(benchmark::State& state) { whole_run(state, false, 1000); }
BENCHMARK(ddim_50_run)->Arg(64)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);
BENCHMARK(ancestral_1000_run)->Arg(64)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

// The full bound costs T model calls per image; it is timed on a T = 20 (cosine) schedule and the
// throughput scaled to T = 1000 (the model calls dominate: the per-step terms are O(pixels)).
void bits_per_dim(benchmark::State& state) {
  const std::int64_t batch = state.range(0), timesteps = 20;
  Model model;
  const diffusion::NoiseSchedule schedule = diffusion::make_schedule(diffusion::ScheduleKind::Cosine, timesteps);
  Generator data(3);
  const Tensor images = sub(mul(rand({batch, 1, 28, 28}, data), 2.0), 1.0);
  for (auto _ : state) {
    const auto bound = diffusion::variational_bound(schedule, model.denoiser(), images, diffusion::Variance::FixedLarge, true, 0);
    benchmark::DoNotOptimize(bound.total.raw_data());
  }
  const double images_done = static_cast<double>(batch * state.iterations());
  state.counters["images/s_T20"] = benchmark::Counter(images_done, benchmark::Counter::kIsRate);
  state.counters["images/s_T1000"] = benchmark::Counter(images_done * timesteps / 1000.0, benchmark::Counter::kIsRate);
}
BENCHMARK(bits_per_dim)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(5.0);

}  // namespace

BENCHMARK_MAIN();
