// The tensor layer's kernels on 16M floats (and matmul at several sizes), with GB/s or
// GFLOP/s counters to read against bench_machine's limits. Thread count is the argument.
#include <benchmark/benchmark.h>

#include "bench/fma_peak.hpp"
#include "tensor/tensor_library.hpp"

namespace {

using namespace ddpm;
constexpr std::int64_t elements = 1 << 24;

class ThreadScope {
 public:
  explicit ThreadScope(benchmark::State& state) { set_num_threads(static_cast<int>(state.range(0))); }
  ~ThreadScope() { set_num_threads(0); }
};

// GFLOP/s, and the fraction of the FMA peak for the thread count, measured in this process
// (fma_peak.hpp; ThreadScope has set the thread limit to the count).
void set_flops_rate(benchmark::State& state, double flops_per_iteration) {
  const double peak = bench::measured_fma_peak(static_cast<int>(state.range(0)));
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["peak_fraction"] =
      benchmark::Counter(flops_per_iteration * state.iterations() / 1e9 / peak, benchmark::Counter::kIsRate);
}

void set_bytes_rate(benchmark::State& state, double bytes_per_iteration) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iteration * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

void elementwise_add(benchmark::State& state) {
  ThreadScope threads(state);
  Generator generator(1);
  const Tensor a = randn({elements}, generator), b = randn({elements}, generator);
  for (auto _ : state) benchmark::DoNotOptimize(add(a, b).raw_data());
  set_bytes_rate(state, 12.0 * elements);
}
BENCHMARK(elementwise_add)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void elementwise_silu(benchmark::State& state) {
  ThreadScope threads(state);
  Generator generator(1);
  const Tensor a = randn({elements}, generator);
  for (auto _ : state) benchmark::DoNotOptimize(silu(a).raw_data());
  set_bytes_rate(state, 8.0 * elements);
}
BENCHMARK(elementwise_silu)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Counter-based random numbers: every element is a Philox block of its own, dropout masks
// take four per block (the masks and the diffusion noise of a training step are tens of
// millions of elements).
template <class Draw>
void random_draw(benchmark::State& state, Draw&& draw) {
  ThreadScope threads(state);
  Generator generator(1);
  for (auto _ : state) benchmark::DoNotOptimize(draw(generator).raw_data());
  state.counters["Melements/s"] = benchmark::Counter(1e-6 * elements * state.iterations(), benchmark::Counter::kIsRate);
}
void random_uniform(benchmark::State& state) { random_draw(state, [](Generator& g) { return rand({elements}, g); }); }
void random_normal(benchmark::State& state) { random_draw(state, [](Generator& g) { return randn({elements}, g); }); }
// Dimension 0 is the image (random.hpp): 64 images of 2^18 elements, as a U-Net activation.
void random_dropout_mask(benchmark::State& state) {
  random_draw(state, [](Generator& g) { return dropout_mask({64, elements / 64}, 0.1, g); });
}
void random_apply_dropout(benchmark::State& state) {
  Tensor x = zeros({64, elements / 64});
  random_draw(state, [&](Generator& g) { return apply_dropout_(x, 0.1, g); });
}
BENCHMARK(random_uniform)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(random_normal)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(random_dropout_mask)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(random_apply_dropout)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void reduce_sum_all(benchmark::State& state) {
  ThreadScope threads(state);
  Generator generator(1);
  const Tensor a = randn({elements}, generator);
  for (auto _ : state) benchmark::DoNotOptimize(sum(a).raw_data());
  set_bytes_rate(state, 4.0 * elements);
}
BENCHMARK(reduce_sum_all)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void reduce_sum_inner_axis(benchmark::State& state) {
  ThreadScope threads(state);
  Generator generator(1);
  const Tensor a = randn({4096, elements / 4096}, generator);
  for (auto _ : state) benchmark::DoNotOptimize(sum(a, {1}).raw_data());
  set_bytes_rate(state, 4.0 * elements);
}
BENCHMARK(reduce_sum_inner_axis)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void reduce_sum_outer_axis(benchmark::State& state) {
  ThreadScope threads(state);
  Generator generator(1);
  const Tensor a = randn({4096, elements / 4096}, generator);
  for (auto _ : state) benchmark::DoNotOptimize(sum(a, {0}).raw_data());
  set_bytes_rate(state, 4.0 * elements);
}
BENCHMARK(reduce_sum_outer_axis)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void softmax_rows(benchmark::State& state) {
  ThreadScope threads(state);
  Generator generator(1);
  const Tensor a = randn({elements / 784, 784}, generator);  // [B*HW, HW] attention scores at 28x28
  for (auto _ : state) benchmark::DoNotOptimize(softmax(a, -1).raw_data());
  set_bytes_rate(state, 8.0 * elements);
}
BENCHMARK(softmax_rows)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void matmul_square(benchmark::State& state) {
  ThreadScope threads(state);
  const std::int64_t n = state.range(1);
  Generator generator(1);
  const Tensor a = randn({n, n}, generator), b = randn({n, n}, generator);
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).raw_data());
  set_flops_rate(state, 2.0 * n * n * n);
}
BENCHMARK(matmul_square)->ArgsProduct({{1, 2}, {256, 512, 1024, 2048}})->UseRealTime()->Unit(benchmark::kMillisecond);

// The U-Net's convolutions written as plain GEMMs, [M, K] x [K, N]: im2col of a batch of 64 times the
// weights (fwd), its transpose times dY (dW), dY times the weights (dX). 2 threads.
void matmul_skinny(benchmark::State& state) {
  ThreadScope threads(state);
  const std::int64_t m = state.range(1), k = state.range(2), n = state.range(3);
  Generator generator(1);
  const Tensor a = randn({m, k}, generator), b = randn({k, n}, generator);
  for (auto _ : state) benchmark::DoNotOptimize(matmul(a, b).raw_data());
  set_flops_rate(state, 2.0 * m * n * k);
}
BENCHMARK(matmul_skinny)
    ->Args({2, 50176, 288, 32})->Args({2, 288, 50176, 32})->Args({2, 50176, 32, 288})
    ->Args({2, 12544, 576, 64})->Args({2, 576, 12544, 64})->Args({2, 12544, 64, 576})
    ->Args({2, 3136, 1152, 64})->Args({2, 1152, 3136, 64})->Args({2, 3136, 64, 1152})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
