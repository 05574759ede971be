#pragma once
// Which code paths this build and this CPU take, for bug reports and benchmark notes
// (`ddpm --version`, `ddpm info --system`).
#include <string>
#include <vector>

namespace ddpm {

struct SystemInfo {
  std::string build_instruction_set;       // what the compiler targeted: "avx512f", "avx2+fma", "sse2", ...
  int build_vector_floats = 0;             // floats in the vectors of kernels not dispatched at run time
  std::vector<std::string> gemm_kernels;   // the microkernels this CPU can run, best first
  std::string gemm_kernel;                 // the one in use (DDPM_GEMM_KERNEL forces one)
  int gemm_tile_rows = 0, gemm_tile_columns = 0;  // its register tile (MR x NR floats)
  int winograd_tile = 0;                   // the 3x3 convolutions' F(m x m, 3 x 3): 4 or 2 (DDPM_WINOGRAD_TILE)
  int threads = 0;                         // the worker limit
};

SystemInfo system_info();

// The same as lines "build  ...", "gemm  ...", "winograd  ...", "threads  ...".
std::string system_report();

}  // namespace ddpm
