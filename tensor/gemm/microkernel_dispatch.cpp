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

std::string available_names() {
  std::string names;
  for (const auto& kernel : available_microkernels<float>()) names += (names.empty() ? "" : ", ") + kernel.name;
  return names;
}
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
  const Microkernel<T>* chosen = selected_name.empty() ? &kernels.front() : nullptr;
  for (const auto& kernel : kernels)
    if (kernel.name == selected_name) chosen = &kernel;
  // Only DDPM_GEMM_KERNEL can name a kernel that is not here (select_microkernel checks
  // its argument): running another one instead would make a forced-kernel test or
  // benchmark report on the wrong path.
  if (!chosen) fail("DDPM_GEMM_KERNEL", "kernel '", selected_name, "' is not available on this CPU (available: ",
                    available_names(), ")");
  cached = chosen;
  seen_generation = generation;
  return *cached;
}

std::string selected_microkernel() {
  std::lock_guard lock(selection_mutex);
  return selected_name;
}

void select_microkernel(const std::string& name, bool check_available) {
  std::lock_guard lock(selection_mutex);
  if (check_available && !name.empty()) {
    bool known = false;
    for (const auto& kernel : available_microkernels<float>()) known = known || kernel.name == name;
    check(known, "select_microkernel", "kernel '", name, "' is not available on this CPU (available: ",
          available_names(), ")");
  }
  selected_name = name;
  selection_generation.fetch_add(1, std::memory_order_release);
}

template const std::vector<Microkernel<float>>& available_microkernels<float>();
template const std::vector<Microkernel<double>>& available_microkernels<double>();
template const Microkernel<float>& active_microkernel<float>();
template const Microkernel<double>& active_microkernel<double>();

}  // namespace ddpm::gemm_detail
