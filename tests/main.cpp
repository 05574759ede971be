#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tensor/gemm/gemm.hpp"

// ctest runs the kernel-sensitive files once per GEMM microkernel (DDPM_GEMM_KERNEL, see
// CMakeLists.txt); a kernel this CPU cannot execute is reported as skipped, not run on
// another kernel and not failed.
constexpr int skipped_exit_code = 77;

int main(int argc, char** argv) {
  if (const char* forced = std::getenv("DDPM_GEMM_KERNEL"); forced && *forced) {
    bool available = false;
    for (const std::string& kernel : ddpm::available_gemm_kernels()) available = available || kernel == forced;
    if (!available) {
      std::printf("skipped: DDPM_GEMM_KERNEL=%s is not a kernel this CPU can execute\n", forced);
      return skipped_exit_code;
    }
    std::printf("GEMM microkernel forced: %s\n", forced);
  }
  return doctest::Context(argc, argv).run();
}
