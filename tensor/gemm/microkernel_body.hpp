#pragma once
// The register-tile body shared by every architecture's translation unit: MR rows of two
// vectors each. Included only by microkernel_<arch>.cpp, compiled with that ISA's flags.
#include <utility>

#include <xsimd/xsimd.hpp>

#include "tensor/gemm/blocking.hpp"
#include "tensor/gemm/microkernel.hpp"

namespace ddpm::gemm_detail {

// C = tile + beta · C on the stored `rows` x `columns` corner of an edge tile (tile: MR rows
// of NR values, alpha applied). Out of line: the full-tile path is the one that matters.
// Arch is in the signature although the body does not use it: each microkernel_<arch>.cpp
// compiles this with its own ISA flags, and instantiations that shared a name would be
// merged by the linker into one, possibly built for an instruction set this CPU lacks.
template <class T, class Arch, int NR>
__attribute__((noinline)) void store_edge_tile(const T* tile, T* c, std::int64_t c_row_stride, T beta,
                                               std::int64_t rows, std::int64_t columns) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t j = 0; j < columns; ++j) {
      T& out = c[r * c_row_stride + j];
      out = beta != T(0) ? tile[r * NR + j] + beta * out : tile[r * NR + j];
    }
}

// Σ_p a(p, r) ⊗ b_panel[p] for the MR rows, then C = alpha · Σ + beta · C on the stored
// `rows` x `columns` part. `a_row(p)` gives the address of depth p's A values and
// `row_offset[r]` where row r's value sits from there: consecutive for packed panels,
// anywhere for A read in place.
//
// Every row is a fold over R = 0..MR-1, not a loop: with constant indices from the start
// the compiler keeps the 2·MR accumulators in registers throughout. Written as loops, it
// kept them in a stack array outside the depth loop, zeroed and spilled on every call
// (24 stores and 12 reloads per tile: 1% of a 2048 product). Always inlined, so packed
// panels' offsets are constants.
template <class T, class Arch, class ARow, std::size_t... R>
__attribute__((always_inline)) inline void multiply_tile(std::int64_t kc, ARow a_row, const std::int64_t* row_offset,
                                                         const T* b_panel, T* c, std::int64_t c_row_stride, T alpha,
                                                         T beta, std::int64_t rows, std::int64_t columns,
                                                         std::index_sequence<R...>) {
  using Batch = xsimd::batch<T, Arch>;
  constexpr int width = static_cast<int>(Batch::size);
  constexpr int MR = sizeof...(R), NR = 2 * width;
  Batch left[MR], right[MR];  // the tile's two vector columns
  ((left[R] = Batch(T(0)), right[R] = Batch(T(0))), ...);
  // The C tile is read (beta != 0) and written after the depth loop: start fetching it now.
  ((__builtin_prefetch(c + R * c_row_stride, 1), __builtin_prefetch(c + R * c_row_stride + NR - 1, 1)), ...);
  for (std::int64_t p = 0; p < kc; ++p) {
    const Batch b0 = Batch::load_aligned(b_panel + p * NR);
    const Batch b1 = Batch::load_aligned(b_panel + p * NR + width);
    const T* a = a_row(p);
    // B eight depths ahead: a panel's first row tile finds it in L3 or memory, and the
    // stream runs on into the next panel, which the caller takes next.
    __builtin_prefetch(b_panel + p * NR + 8 * NR);
    ((left[R] = xsimd::fma(Batch(a[row_offset[R]]), b0, left[R]),
      right[R] = xsimd::fma(Batch(a[row_offset[R]]), b1, right[R])),
     ...);
  }
  const Batch alpha_batch(alpha), beta_batch(beta);
  if (rows != MR || columns != NR) {
    alignas(64) T tile[MR * NR];
    (((left[R] * alpha_batch).store_aligned(tile + R * NR), (right[R] * alpha_batch).store_aligned(tile + R * NR + width)),
     ...);
    store_edge_tile<T, Arch, NR>(tile, c, c_row_stride, beta, rows, columns);
  } else if (beta == T(0)) {  // C is not read: it may hold garbage (even NaN) in a fresh buffer
    (((left[R] * alpha_batch).store_unaligned(c + R * c_row_stride),
      (right[R] * alpha_batch).store_unaligned(c + R * c_row_stride + width)),
     ...);
  } else {
    ((xsimd::fma(beta_batch, Batch::load_unaligned(c + R * c_row_stride), left[R] * alpha_batch)
          .store_unaligned(c + R * c_row_stride),
      xsimd::fma(beta_batch, Batch::load_unaligned(c + R * c_row_stride + width), right[R] * alpha_batch)
          .store_unaligned(c + R * c_row_stride + width)),
     ...);
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
  multiply_tile<T, Arch>(kc, [a_panel](std::int64_t p) { return a_panel + p * MR; }, offsets.values, b_panel, c,
                         c_row_stride, alpha, beta, rows, columns, std::make_index_sequence<MR>{});
}

template <class T, class Arch, int MR>
void gathered_tile(std::int64_t kc, const T* a_base, const std::int64_t* depth_offsets, const std::int64_t* row_offsets,
                   const T* b_panel, T* c, std::int64_t c_row_stride, T alpha, T beta, std::int64_t rows,
                   std::int64_t columns) {
  std::int64_t offsets[MR];  // a local copy the loop can keep in registers
  for (int r = 0; r < MR; ++r) offsets[r] = row_offsets[r];
  multiply_tile<T, Arch>(kc, [a_base, depth_offsets](std::int64_t p) { return a_base + depth_offsets[p]; }, offsets,
                         b_panel, c, c_row_stride, alpha, beta, rows, columns, std::make_index_sequence<MR>{});
}

template <class T, class Arch, int MR>
Microkernel<T> make_microkernel(const char* name) {
  static_assert(MR <= max_microkernel_rows);
  constexpr std::int64_t nr = 2 * static_cast<std::int64_t>(xsimd::batch<T, Arch>::size);
  const std::int64_t panel_row_bytes = nr * static_cast<std::int64_t>(sizeof(T));
  return {name,
          MR,
          nr,
          depth_block_for(panel_row_bytes, l1_panel_bytes, l1_panel_most_depth),
          depth_block_for(panel_row_bytes, l2_panel_bytes, l2_panel_most_depth),
          &register_tile<T, Arch, MR>,
          &gathered_tile<T, Arch, MR>};
}

}  // namespace ddpm::gemm_detail
