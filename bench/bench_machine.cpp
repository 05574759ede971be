// The machine's limits, so every other figure can be read as a fraction of them:
// peak FMA throughput and STREAM-style memory bandwidth, on 1 and 2 threads.
#include <benchmark/benchmark.h>

#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/parallel.hpp"
#include "tensor/storage.hpp"

namespace {

// Ten independent FMA chains per thread hide the FMA latency; the result is kept live so
// the compiler cannot drop the loop.
void peak_fma(benchmark::State& state) {
  using Batch = xsimd::batch<float>;
  constexpr int chains = 10;
  constexpr std::int64_t iterations = 1 << 20;
  const int threads = static_cast<int>(state.range(0));
  std::vector<float> sink(threads * 64);
  for (auto _ : state) {
    ddpm::parallel_for(threads, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t t = begin; t < end; ++t) {
        Batch accumulators[chains];
        for (int c = 0; c < chains; ++c) accumulators[c] = Batch(1.0f + c * 1e-3f);
        const Batch scale(0.999999f), shift(1e-7f);
        for (std::int64_t i = 0; i < iterations; ++i)
          for (int c = 0; c < chains; ++c) accumulators[c] = xsimd::fma(accumulators[c], scale, shift);
        Batch total = accumulators[0];
        for (int c = 1; c < chains; ++c) total += accumulators[c];
        total.store_unaligned(sink.data() + t * 64);
      }
    });
    benchmark::DoNotOptimize(sink.data());
  }
  const double flops_per_iteration = 2.0 * Batch::size * chains * iterations * threads;
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  state.counters["simd_width"] = Batch::size;
}
BENCHMARK(peak_fma)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

constexpr std::int64_t stream_elements = 1 << 24;  // 16M floats = 64 MiB per array

// STREAM triad: a = b + s c. Counted as 12 bytes per element (two reads, one write), as
// STREAM counts it.
void stream_triad(benchmark::State& state) {
  ddpm::set_num_threads(static_cast<int>(state.range(0)));
  ddpm::Storage a(stream_elements * 4), b(stream_elements * 4), c(stream_elements * 4);
  float* pa = static_cast<float*>(a.data());
  float* pb = static_cast<float*>(b.data());
  float* pc = static_cast<float*>(c.data());
  ddpm::parallel_for(stream_elements, 1 << 16, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) pa[i] = 0, pb[i] = 1, pc[i] = 2;
  });
  for (auto _ : state) {
    ddpm::parallel_for(stream_elements, 1 << 16, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    });
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(12.0 * stream_elements * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  ddpm::set_num_threads(0);
}
BENCHMARK(stream_triad)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Read-only bandwidth: the ceiling for a full reduction.
void stream_read(benchmark::State& state) {
  ddpm::set_num_threads(static_cast<int>(state.range(0)));
  ddpm::Storage a(stream_elements * 4);
  float* pa = static_cast<float*>(a.data());
  for (std::int64_t i = 0; i < stream_elements; ++i) pa[i] = 1;
  std::vector<float> partial(stream_elements >> 16);
  for (auto _ : state) {
    ddpm::parallel_for(stream_elements, 1 << 16, [&](std::int64_t begin, std::int64_t end) {
      using Batch = xsimd::batch<float>;
      Batch s0(0.f), s1(0.f), s2(0.f), s3(0.f);
      for (std::int64_t i = begin; i < end; i += 4 * Batch::size) {
        s0 += Batch::load_aligned(pa + i);
        s1 += Batch::load_aligned(pa + i + Batch::size);
        s2 += Batch::load_aligned(pa + i + 2 * Batch::size);
        s3 += Batch::load_aligned(pa + i + 3 * Batch::size);
      }
      partial[begin >> 16] = xsimd::hadd(s0 + s1 + s2 + s3);
    });
    benchmark::DoNotOptimize(partial.data());
  }
  state.counters["GB/s"] = benchmark::Counter(4.0 * stream_elements * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  ddpm::set_num_threads(0);
}
BENCHMARK(stream_read)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
