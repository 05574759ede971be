#include "tensor/system_info.hpp"

#include <xsimd/xsimd.hpp>

#include "tensor/convolution.hpp"
#include "tensor/gemm/microkernel.hpp"
#include "tensor/parallel.hpp"

namespace ddpm {
namespace {

// The predefined macros of this translation unit's flags, which every file of the library
// shares (the microkernels add their own per file).
std::string compiled_instruction_set() {
#if defined(__AVX512F__)
  return "avx512f";
#elif defined(__AVX2__) && defined(__FMA__)
  return "avx2+fma";
#elif defined(__AVX2__)
  return "avx2";
#elif defined(__AVX__)
  return "avx";
#elif defined(__SSE4_2__)
  return "sse4.2";
#elif defined(__SSE2__)
  return "sse2";
#else
  return "generic";
#endif
}

}  // namespace

SystemInfo system_info() {
  SystemInfo info;
  info.build_instruction_set = compiled_instruction_set();
  info.build_vector_floats = static_cast<int>(xsimd::batch<float>::size);
  for (const auto& kernel : gemm_detail::available_microkernels<float>()) info.gemm_kernels.push_back(kernel.name);
  const auto& kernel = gemm_detail::active_microkernel<float>();
  info.gemm_kernel = kernel.name;
  info.gemm_tile_rows = static_cast<int>(kernel.mr);
  info.gemm_tile_columns = static_cast<int>(kernel.nr);
  info.winograd_tile = selected_winograd_tile();
  info.threads = num_threads();
  return info;
}

std::string system_report() {
  const SystemInfo info = system_info();
  std::string kernels;
  for (const auto& name : info.gemm_kernels) kernels += (kernels.empty() ? "" : ", ") + name;
  return "build    " + info.build_instruction_set + " (" + std::to_string(info.build_vector_floats) +
         " floats per vector)\ngemm     " + info.gemm_kernel + ", " + std::to_string(info.gemm_tile_rows) + " x " +
         std::to_string(info.gemm_tile_columns) + " tile (available: " + kernels + ")\nwinograd F(" +
         std::to_string(info.winograd_tile) + "x" + std::to_string(info.winograd_tile) + ", 3x3)\nthreads  " +
         std::to_string(info.threads) + "\n";
}

}  // namespace ddpm
