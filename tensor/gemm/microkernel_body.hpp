#pragma once
// The register-tile body shared by every architecture's translation unit: MR rows of two
// vectors each. Included only by microkernel_<arch>.cpp, compiled with that ISA's flags.
#include <xsimd/xsimd.hpp>

#include "tensor/gemm/microkernel.hpp"

namespace ddpm::gemm_detail {

// Σ_p a(p, r) ⊗ b_panel[p] for the MR rows, then C = alpha · Σ + beta · C on the stored
// `rows` x `columns` part. `a_row(p)` gives the address of depth p's A values and
// `row_offset[r]` where row r's value sits from there: consecutive for packed panels,
// anywhere for A read in place.
template <class T, class Arch, int MR, class ARow>
inline void multiply_tile(std::int64_t kc, ARow a_row, const std::int64_t (&row_offset)[MR], const T* b_panel, T* c,
                          std::int64_t c_row_stride, T alpha, T beta, std::int64_t rows, std::int64_t columns) {
  using Batch = xsimd::batch<T, Arch>;
  constexpr int width = static_cast<int>(Batch::size);
  constexpr int NR = 2 * width;
  Batch accumulator[MR][2];
  for (int r = 0; r < MR; ++r) accumulator[r][0] = accumulator[r][1] = Batch(T(0));
  // The C tile is read (beta != 0) and written after the depth loop: start fetching it now.
  for (int r = 0; r < MR; ++r) {
    __builtin_prefetch(c + r * c_row_stride, 1);
    __builtin_prefetch(c + r * c_row_stride + NR - 1, 1);
  }
  for (std::int64_t p = 0; p < kc; ++p) {
    const Batch b0 = Batch::load_aligned(b_panel + p * NR);
    const Batch b1 = Batch::load_aligned(b_panel + p * NR + width);
    const T* a = a_row(p);
    for (int r = 0; r < MR; ++r) {
      const Batch ar(a[row_offset[r]]);
      accumulator[r][0] = xsimd::fma(ar, b0, accumulator[r][0]);
      accumulator[r][1] = xsimd::fma(ar, b1, accumulator[r][1]);
    }
  }
  const Batch alpha_batch(alpha), beta_batch(beta);
  if (rows == MR && columns == NR) {
    for (int r = 0; r < MR; ++r) {
      T* row = c + r * c_row_stride;
      for (int half = 0; half < 2; ++half) {
        Batch value = accumulator[r][half] * alpha_batch;
        // beta == 0 must not read C: it may hold garbage (even NaN) in a fresh buffer.
        if (beta != T(0)) value = xsimd::fma(beta_batch, Batch::load_unaligned(row + half * width), value);
        value.store_unaligned(row + half * width);
      }
    }
    return;
  }
  alignas(64) T tile[MR * NR];
  for (int r = 0; r < MR; ++r) {
    (accumulator[r][0] * alpha_batch).store_aligned(tile + r * NR);
    (accumulator[r][1] * alpha_batch).store_aligned(tile + r * NR + width);
  }
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < columns; ++j) {
      T& out = c[r * c_row_stride + j];
      out = beta != T(0) ? tile[r * NR + j] + beta * out : tile[r * NR + j];
    }
}

template <int MR>
struct ConsecutiveOffsets {
  std::int64_t values[MR];
  constexpr ConsecutiveOffsets() : values{} {
    for (int r = 0; r < MR; ++r) values[r] = r;
  }
};

template <class T, class Arch, int MR>
void register_tile(std::int64_t kc, const T* a_panel, const T* b_panel, T* c, std::int64_t c_row_stride, T alpha,
                   T beta, std::int64_t rows, std::int64_t columns) {
  static constexpr ConsecutiveOffsets<MR> offsets;
  multiply_tile<T, Arch, MR>(kc, [a_panel](std::int64_t p) { return a_panel + p * MR; }, offsets.values, b_panel, c,
                             c_row_stride, alpha, beta, rows, columns);
}

template <class T, class Arch, int MR>
void gathered_tile(std::int64_t kc, const T* a_base, const std::int64_t* depth_offsets, const std::int64_t* row_offsets,
                   const T* b_panel, T* c, std::int64_t c_row_stride, T alpha, T beta, std::int64_t rows,
                   std::int64_t columns) {
  std::int64_t offsets[MR];  // a local copy the loop can keep in registers
  for (int r = 0; r < MR; ++r) offsets[r] = row_offsets[r];
  multiply_tile<T, Arch, MR>(kc, [a_base, depth_offsets](std::int64_t p) { return a_base + depth_offsets[p]; }, offsets,
                             b_panel, c, c_row_stride, alpha, beta, rows, columns);
}

template <class T, class Arch, int MR>
Microkernel<T> make_microkernel(const char* name) {
  static_assert(MR <= max_microkernel_rows);
  return {name, MR, 2 * static_cast<std::int64_t>(xsimd::batch<T, Arch>::size), &register_tile<T, Arch, MR>,
          &gathered_tile<T, Arch, MR>};
}

}  // namespace ddpm::gemm_detail
