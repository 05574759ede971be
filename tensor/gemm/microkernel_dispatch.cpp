#include <atomic>
#include <cstdlib>
#include <mutex>

#include <xsimd/config/xsimd_cpuid.hpp>

#include "tensor/error.hpp"
#include "tensor/gemm/microkernel.hpp"

namespace ddpm::gemm_detail {
namespace {
std::mutex selection_mutex;
std::string selected_name = [] {
  const char* forced = std::getenv("DDPM_GEMM_KERNEL");
  return std::string(forced ? forced : "");
}();
std::atomic<int> selection_generation{0};
}  // namespace

template <class T>
const std::vector<Microkernel<T>>& available_microkernels() {
  static const std::vector<Microkernel<T>> kernels = [] {
    std::vector<Microkernel<T>> found;
    const auto cpu = xsimd::available_architectures();
    if (cpu.avx512f) found.push_back(avx512_microkernel<T>());
    if (cpu.fma3_avx2) found.push_back(avx2_microkernel<T>());
    found.push_back(sse2_microkernel<T>());
    return found;
  }();
  return kernels;
}

template <class T>
const Microkernel<T>& active_microkernel() {
  thread_local int seen_generation = -1;
  thread_local const Microkernel<T>* cached = nullptr;
  const int generation = selection_generation.load(std::memory_order_acquire);
  if (cached && seen_generation == generation) return *cached;
  std::lock_guard lock(selection_mutex);
  const auto& kernels = available_microkernels<T>();
  cached = &kernels.front();
  for (const auto& kernel : kernels)
    if (kernel.name == selected_name) cached = &kernel;
  seen_generation = generation;
  return *cached;
}

void select_microkernel(const std::string& name) {
  std::lock_guard lock(selection_mutex);
  if (!name.empty()) {
    bool known = false;
    for (const auto& kernel : available_microkernels<float>()) known = known || kernel.name == name;
    check(known, "select_microkernel", "kernel '", name, "' is not available on this CPU");
  }
  selected_name = name;
  selection_generation.fetch_add(1, std::memory_order_release);
}

template const std::vector<Microkernel<float>>& available_microkernels<float>();
template const std::vector<Microkernel<double>>& available_microkernels<double>();
template const Microkernel<float>& active_microkernel<float>();
template const Microkernel<double>& active_microkernel<double>();

}  // namespace ddpm::gemm_detail
