// The machine's limits, so every other figure can be read as a fraction of them:
// peak FMA throughput and STREAM-style memory bandwidth, on 1 and 2 threads.
#include <benchmark/benchmark.h>

#include <vector>

#include <xsimd/xsimd.hpp>

#include "bench/fma_peak.hpp"
#include "tensor/parallel.hpp"
#include "tensor/storage.hpp"

namespace {

// The FMA chains of fma_peak.hpp on the active GEMM kernel's vectors (DDPM_GEMM_KERNEL
// forces one), on 1 and 2 threads.
void peak_fma(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  std::vector<float> sink;
  double flops_per_iteration = 0;
  for (auto _ : state) flops_per_iteration = ddpm::bench::run_fma_chains(threads, std::int64_t{1} << 20, sink);
  benchmark::DoNotOptimize(sink.data());
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
  const auto isa = ddpm::bench::fma_isa_in_use();
  state.counters["simd_width"] = isa.float_lanes;
  state.SetLabel(isa.kernel);
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
