#pragma once
// The one piece of the GEMM that knows the instruction set: an MR x NR register tile
// C = alpha * Σ_p a_panel[p] ⊗ b_panel[p] + beta * C over packed, zero-padded panels
// (a_panel: kc groups of MR values, b_panel: kc groups of NR values). Only `rows` x
// `columns` of the tile are stored, for edge tiles.
//
// Instantiated once per architecture, each in a file compiled for that instruction set,
// and picked at run time from the CPU's features (xsimd's dispatch idea).
#include <cstdint>
#include <string>
#include <vector>

namespace ddpm::gemm_detail {

template <class T>
using MicrokernelFunction = void (*)(std::int64_t kc, const T* a_panel, const T* b_panel, T* c,
                                     std::int64_t c_row_stride, T alpha, T beta, std::int64_t rows,
                                     std::int64_t columns);

// The same tile with A read in place instead of from a packed panel: A's value for row r
// at depth p is a_base[depth_offsets[p] + row_offsets[r]] (row_offsets has MR entries).
// A convolution's shifted input planes are such a matrix, so they need no packing (and
// stride or dilation is just a different table).
template <class T>
using GatheredMicrokernelFunction = void (*)(std::int64_t kc, const T* a_base, const std::int64_t* depth_offsets,
                                             const std::int64_t* row_offsets, const T* b_panel, T* c,
                                             std::int64_t c_row_stride, T alpha, T beta, std::int64_t rows,
                                             std::int64_t columns);

// No kernel has more rows than this (AVX-512: 12): callers size row-offset tables with it.
constexpr int max_microkernel_rows = 16;

template <class T>
struct Microkernel {
  std::string name;  // "avx512", "avx2", "sse2"
  std::int64_t mr = 0;
  std::int64_t nr = 0;
  std::int64_t kc = 0;       // the depth of a block, its B panel in L1 (blocking.hpp)
  std::int64_t deep_kc = 0;  // the same for large, wide products, the panel in L2
  MicrokernelFunction<T> run = nullptr;
  GatheredMicrokernelFunction<T> run_gathered = nullptr;
};

// Every kernel this CPU can run, best first.
template <class T>
const std::vector<Microkernel<T>>& available_microkernels();

// The kernel in use: the best available, or the one named by DDPM_GEMM_KERNEL, or the one
// set by select_microkernel (tests use it to run every kernel against the reference).
template <class T>
const Microkernel<T>& active_microkernel();
// "" = best available. Unchecked only to restore a selection made before (which may be a
// DDPM_GEMM_KERNEL naming a kernel this CPU lacks: the error then comes at its use).
void select_microkernel(const std::string& name, bool check_available = true);
std::string selected_microkernel();  // the name as selected, "" for best available

// Per-architecture factories, each defined in its own translation unit.
template <class T> Microkernel<T> sse2_microkernel();
template <class T> Microkernel<T> avx2_microkernel();
template <class T> Microkernel<T> avx512_microkernel();

}  // namespace ddpm::gemm_detail
