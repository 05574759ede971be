#include "bench/fma_peak.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include "bench/fma_chains.hpp"
#include "tensor/gemm/gemm.hpp"
#include "tensor/parallel.hpp"

namespace ddpm::bench {
namespace {

struct ChainsForKernel {
  const char* kernel;
  int float_lanes;
  double (*run)(std::int64_t, float*);
};
constexpr ChainsForKernel chains_for_kernel[] = {
    {"avx512", 16, &fma_chains_avx512}, {"avx2", 8, &fma_chains_avx2}, {"sse2", 4, &fma_chains_sse2}};

const ChainsForKernel& chains_in_use() {
  const std::string kernel = active_gemm_kernel();
  for (const auto& chains : chains_for_kernel)
    if (kernel == chains.kernel) return chains;
  return chains_for_kernel[2];  // a kernel added without chains: the portable baseline
}

}  // namespace

FmaIsa fma_isa_in_use() {
  const auto& chains = chains_in_use();
  return {chains.kernel, chains.float_lanes};
}

double run_fma_chains(int threads, std::int64_t iterations, std::vector<float>& sink) {
  const auto& chains = chains_in_use();
  sink.resize(static_cast<std::size_t>(threads) * 64);
  std::vector<double> flops(static_cast<std::size_t>(threads));
  parallel_for(threads, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t t = begin; t < end; ++t)
      flops[static_cast<std::size_t>(t)] = chains.run(iterations, sink.data() + t * 64);
  });
  double total = 0;
  for (double f : flops) total += f;
  return total;
}

double measured_fma_peak(int threads) {
  static std::mutex mutex;
  static std::map<std::pair<std::string, int>, double> measured;
  std::lock_guard lock(mutex);
  const std::pair<std::string, int> key{active_gemm_kernel(), threads};
  const auto found = measured.find(key);
  if (found != measured.end()) return found->second;
  std::vector<float> sink;
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    const double flops = run_fma_chains(threads, std::int64_t{1} << 20, sink);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, flops / seconds / 1e9);
  }
  return measured[key] = best;
}

}  // namespace ddpm::bench
