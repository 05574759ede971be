#include "tensor/gemm/gemm.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <vector>

#include "tensor/gemm/blocking.hpp"
#include "tensor/gemm/microkernel.hpp"
#include "tensor/kernel_path.hpp"
#include "tensor/parallel.hpp"
#include "tensor/storage.hpp"

namespace ddpm {
namespace {

using gemm_detail::depth_step;
using gemm_detail::max_column_block;
using gemm_detail::round_up;
using gemm_detail::row_block;
using gemm_detail::scratch;
using gemm_detail::AlignedBuffer;

// C = beta C, for k == 0.
template <class T>
void scale_c(const GemmProblem<T>& problem, std::int64_t b) {
  T* c = problem.c(b);
  for (std::int64_t i = 0; i < problem.m; ++i)
    for (std::int64_t j = 0; j < problem.n; ++j) {
      T& out = c[i * problem.c_row_stride + j];
      out = problem.beta == T(0) ? T(0) : problem.beta * out;
    }
}

template <class T>
bool reads_a_in_place(const GemmProblem<T>& problem, const gemm_detail::Microkernel<T>& kernel) {
  return problem.a_data && problem.n <= 4 * kernel.nr;
}

// Rows [i0, i0+rows) x columns [j0, j0+columns) of C_b for one depth block, from an
// already packed B block whose panel 0 is column j0.
template <class T>
void multiply_block(const GemmProblem<T>& problem, const gemm_detail::Microkernel<T>& kernel, std::int64_t b,
                    std::int64_t i0, std::int64_t rows, std::int64_t j0, std::int64_t columns, std::int64_t p0,
                    std::int64_t depths, const T* packed_b, const T* prepacked_a = nullptr) {
  const std::int64_t mr = kernel.mr, nr = kernel.nr;
  const T beta = p0 == 0 ? problem.beta : T(1);
  T* c = problem.c(b);
  if (!prepacked_a && reads_a_in_place(problem, kernel)) {
    thread_local std::vector<std::int64_t> depth_offsets;
    depth_offsets.resize(static_cast<std::size_t>(depths));
    for (std::int64_t p = 0; p < depths; ++p) depth_offsets[static_cast<std::size_t>(p)] = p * problem.a_column_stride;
    const T* a = problem.a_data(b) + p0 * problem.a_column_stride;
    for (std::int64_t jr = 0; jr < columns; jr += nr)
      for (std::int64_t ir = 0; ir < rows; ir += mr) {
        const std::int64_t valid = std::min(mr, rows - ir);
        std::int64_t row_offsets[gemm_detail::max_microkernel_rows];  // rows past the edge repeat the last one
        for (std::int64_t r = 0; r < mr; ++r) row_offsets[r] = (i0 + ir + std::min(r, valid - 1)) * problem.a_row_stride;
        kernel.run_gathered(depths, a, depth_offsets.data(), row_offsets, packed_b + jr * depths,
                            c + (i0 + ir) * problem.c_row_stride + j0 + jr, problem.c_row_stride, problem.alpha, beta,
                            valid, std::min(nr, columns - jr));
      }
    return;
  }
  const T* packed_a = prepacked_a;
  if (!packed_a) {
    T* buffer = scratch<T>(0, static_cast<std::size_t>(round_up(rows, mr) * depths));
    problem.pack_a(b, i0, p0, rows, depths, mr, buffer);
    packed_a = buffer;
  }
  for (std::int64_t jr = 0; jr < columns; jr += nr)
    for (std::int64_t ir = 0; ir < rows; ir += mr)
      kernel.run(depths, packed_a + ir * depths, packed_b + jr * depths, c + (i0 + ir) * problem.c_row_stride + j0 + jr,
                 problem.c_row_stride, problem.alpha, beta, std::min(mr, rows - ir), std::min(nr, columns - jr));
}

// Many small products, or one with a single row block: independent tasks over (batch,
// row block, column block), each packing its own panels and running the whole depth.
template <class T>
void gemm_independent_tasks(const GemmProblem<T>& problem, const gemm_detail::Microkernel<T>& kernel,
                            std::int64_t depth_block) {
  const std::int64_t m = problem.m, n = problem.n, k = problem.k, nr = kernel.nr;
  const std::int64_t threads = std::max(1, num_threads());
  // One product with few rows: thinner row blocks rather than column splits, since every
  // column split packs the whole of A again (for a weight gradient, the im2col).
  std::int64_t block_rows = row_block;
  if (problem.batches == 1 && m < threads * row_block)
    block_rows = std::min(row_block, round_up((m + threads - 1) / threads, kernel.mr));
  const std::int64_t row_blocks = (m + block_rows - 1) / block_rows;
  const std::int64_t wanted_tasks = problem.batches == 1 ? threads : 2 * threads;
  const std::int64_t column_splits =
      std::max<std::int64_t>(1, (wanted_tasks + problem.batches * row_blocks - 1) / (problem.batches * row_blocks));
  const std::int64_t column_block = std::clamp(round_up((n + column_splits - 1) / column_splits, nr), nr, max_column_block);
  const std::int64_t column_blocks = (n + column_block - 1) / column_block;
  const std::int64_t step = depth_step(k, depth_block);
  // A shared by all batches is packed once, as row block x depth block pieces laid end to
  // end: piece (i0, p0) starts at i0 * k + p0 * rows_padded(i0).
  std::unique_ptr<AlignedBuffer<T>> shared_a;
  auto shared_piece = [&](std::int64_t i0, std::int64_t p0) {
    const std::int64_t rows = std::min(row_block, m - i0);
    return shared_a->data + round_up(i0, kernel.mr) * k + p0 * round_up(rows, kernel.mr);
  };
  if (problem.a_same_for_all_batches && problem.batches > 1) {
    shared_a = std::make_unique<AlignedBuffer<T>>(static_cast<std::size_t>(round_up(m, kernel.mr) * k + kernel.mr * k));
    const std::int64_t depth_blocks = (k + step - 1) / step;
    parallel_for(row_blocks * depth_blocks, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t piece = begin; piece < end; ++piece) {
        const std::int64_t i0 = piece / depth_blocks * row_block, p0 = piece % depth_blocks * step;
        problem.pack_a(0, i0, p0, std::min(row_block, m - i0), std::min(step, k - p0), kernel.mr, shared_piece(i0, p0));
      }
    });
  }
  parallel_for(problem.batches * row_blocks * column_blocks, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t task = begin; task < end; ++task) {
      const std::int64_t b = task / (row_blocks * column_blocks);
      const std::int64_t i0 = (task / column_blocks % row_blocks) * block_rows;
      const std::int64_t j0 = task % column_blocks * column_block;
      const std::int64_t rows = std::min(block_rows, m - i0), columns = std::min(column_block, n - j0);
      T* packed_b = scratch<T>(1, static_cast<std::size_t>(round_up(columns, nr) * step));
      for (std::int64_t p0 = 0; p0 < k; p0 += step) {
        const std::int64_t depths = std::min(step, k - p0);
        problem.pack_b(b, p0, j0, depths, columns, nr, packed_b);
        multiply_block(problem, kernel, b, i0, rows, j0, columns, p0, depths, packed_b,
                       shared_a ? shared_piece(i0, p0) : nullptr);
      }
    }
  });
}

// One large product: the BLIS loop order. Each KC x NC block of B is packed once, by all
// threads together, and shared by the tasks over row blocks (and column parts).
template <class T>
void gemm_shared_panels(const GemmProblem<T>& problem, const gemm_detail::Microkernel<T>& kernel, std::int64_t b,
                        std::int64_t depth_block) {
  const std::int64_t m = problem.m, n = problem.n, k = problem.k, nr = kernel.nr;
  // Row blocks of near-equal height, as many as a multiple of the thread count, so no
  // thread waits on a thin last block.
  const std::int64_t threads = std::max(1, num_threads());
  const std::int64_t row_blocks_needed = (m + row_block - 1) / row_block;
  const std::int64_t row_blocks = row_blocks_needed == 1 ? 1 : round_up(row_blocks_needed, threads);
  // Block i covers row tiles [i·tiles/row_blocks, (i+1)·tiles/row_blocks): equal to a tile,
  // where equal heights rounded up to MR left a thin last block (2048 rows: 15 x 132 + 68)
  // and one thread waiting at every depth block's barrier.
  const std::int64_t row_tiles = (m + kernel.mr - 1) / kernel.mr;
  auto block_start = [&](std::int64_t block) { return std::min(m, block * row_tiles / row_blocks * kernel.mr); };
  const std::int64_t step = depth_step(k, depth_block);
  // From the tensor buffer cache: a block of B is megabytes (8 MiB for a 2048 product), and
  // a fresh mapping on every call page-faulted it in each time (0.6% of a 2048 product).
  Storage packed_b_storage(static_cast<std::size_t>(round_up(std::min(n, max_column_block), nr) * step) * sizeof(T));
  T* const packed_b = static_cast<T*>(packed_b_storage.data());
  for (std::int64_t j0 = 0; j0 < n; j0 += max_column_block) {
    const std::int64_t columns = std::min(max_column_block, n - j0);
    const std::int64_t panels = (columns + nr - 1) / nr;
    const std::int64_t wanted_tasks = 8 * threads;
    const std::int64_t column_parts = std::clamp<std::int64_t>((wanted_tasks + row_blocks - 1) / row_blocks, 1, panels);
    const std::int64_t panels_per_part = (panels + column_parts - 1) / column_parts;
    for (std::int64_t p0 = 0; p0 < k; p0 += step) {
      const std::int64_t depths = std::min(step, k - p0);
      const std::int64_t pack_grain = std::max<std::int64_t>(1, panels / (4 * std::max(1, num_threads())));
      parallel_for(panels, pack_grain, [&](std::int64_t first, std::int64_t last) {
        const std::int64_t start = first * nr;
        problem.pack_b(b, p0, j0 + start, depths, std::min(last * nr, columns) - start, nr, packed_b + start * depths);
      });
      parallel_for(row_blocks * column_parts, 1, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t task = begin; task < end; ++task) {
          const std::int64_t i0 = block_start(task / column_parts), i1 = block_start(task / column_parts + 1);
          const std::int64_t first_panel = task % column_parts * panels_per_part;
          if (first_panel >= panels || i0 >= i1) continue;
          const std::int64_t start = first_panel * nr;
          const std::int64_t part_columns = std::min(panels_per_part * nr, columns - start);
          multiply_block(problem, kernel, b, i0, i1 - i0, j0 + start, part_columns, p0, depths,
                         packed_b + start * depths);
        }
      });
    }
  }
}

}  // namespace

template <class T>
void gemm_run(const GemmProblem<T>& problem) {
  const auto& kernel = gemm_detail::active_microkernel<T>();
  if (problem.m <= 0 || problem.n <= 0 || problem.batches <= 0) return;
  if (problem.k == 0) {
    for (std::int64_t b = 0; b < problem.batches; ++b) scale_c(problem, b);
    return;
  }
  // Both schedules run the same microkernel calls over the same depth blocks in the same
  // order for every C tile, so the choice never changes the result; the depth block
  // depends on the shape alone, never on the thread count.
  const bool large = problem.m > row_block && problem.n >= 4 * kernel.nr && problem.k > kernel.kc;
  const bool wide = problem.n >= 16 * kernel.nr;  // each packed A block serves 16 B panels or more
  const std::int64_t depth_block = large && wide ? kernel.deep_kc : kernel.kc;
  const bool shared = problem.schedule == GemmSchedule::SharedPanels ||
                      (problem.schedule == GemmSchedule::Auto && large && problem.batches < 2 * num_threads());
  if (shared) {
    for (std::int64_t b = 0; b < problem.batches; ++b) gemm_shared_panels(problem, kernel, b, depth_block);
  } else {
    gemm_independent_tasks(problem, kernel, depth_block);
  }
}

// Row-major A (unit column stride), full panels: the MR rows are read side by side and each
// depth's MR values written together, one pass over the panel where the row-by-row packer
// makes MR strided passes (packing was 1.4% of a 2048 product, OpenBLAS's 0.3%).
template <class T, int MR>
std::int64_t pack_a_full_panels(const T* data, std::int64_t row_stride, std::int64_t rows, std::int64_t depths, T* out) {
  const std::int64_t full_panels = rows / MR;
  for (std::int64_t panel = 0; panel < full_panels; ++panel) {
    const T* source = data + panel * MR * row_stride;
    T* destination = out + panel * MR * depths;
    std::int64_t p = 0;
    for (; p + 8 <= depths; p += 8) {  // eight depths at a time: vector loads, one run of stores
      T block[MR][8];
      for (int r = 0; r < MR; ++r)
        for (int q = 0; q < 8; ++q) block[r][q] = source[r * row_stride + p + q];
      for (int q = 0; q < 8; ++q)
        for (int r = 0; r < MR; ++r) destination[(p + q) * MR + r] = block[r][q];
    }
    for (; p < depths; ++p)
      for (int r = 0; r < MR; ++r) destination[p * MR + r] = source[r * row_stride + p];
  }
  return full_panels * MR;
}

template <class T>
void pack_a_strided(const T* data, std::int64_t row_stride, std::int64_t column_stride, std::int64_t row,
                    std::int64_t depth, std::int64_t rows, std::int64_t depths, std::int64_t mr, T* out) {
  if (column_stride == 1 && (mr == 6 || mr == 12)) {
    const T* block = data + row * row_stride + depth;
    const std::int64_t packed = mr == 6 ? pack_a_full_panels<T, 6>(block, row_stride, rows, depths, out)
                                        : pack_a_full_panels<T, 12>(block, row_stride, rows, depths, out);
    if (packed == rows) return;
    row += packed, rows -= packed, out += packed * depths;
  }
  pack_a_by_rows<T>(rows, depths, mr, out, [&](std::int64_t i, T* line) {
    const T* source = data + (row + i) * row_stride + depth * column_stride;
    for (std::int64_t p = 0; p < depths; ++p) line[p] = source[p * column_stride];
  });
}

template <class T>
void pack_b_strided(const T* data, std::int64_t row_stride, std::int64_t column_stride, std::int64_t depth,
                    std::int64_t column, std::int64_t depths, std::int64_t columns, std::int64_t nr, T* out) {
  if (column_stride == 1) {
    // Row by row across every panel: each row of B is read once, front to back. Panel by
    // panel, a row's NR values at a row stride of (for 1024 columns) 4 KiB ran ahead of the
    // prefetcher: 3% of a 1024 product was spent waiting on those loads.
    for (std::int64_t p = 0; p < depths; ++p) {
      const T* row = data + (depth + p) * row_stride + column;
      for (std::int64_t panel = 0; panel * nr < columns; ++panel) {
        T* destination = out + (panel * depths + p) * nr;
        const T* source = row + panel * nr;
        const std::int64_t valid = std::min(nr, columns - panel * nr);
        std::int64_t j = 0;
        for (; j < valid; ++j) destination[j] = source[j];
        for (; j < nr; ++j) destination[j] = T(0);
      }
    }
    return;
  }
  for (std::int64_t panel = 0; panel * nr < columns; ++panel) {
    T* destination = out + panel * nr * depths;
    const std::int64_t valid = std::min(nr, columns - panel * nr);
    const T* source = data + depth * row_stride + (column + panel * nr) * column_stride;
    for (std::int64_t j = 0; j < nr; ++j)
      for (std::int64_t p = 0; p < depths; ++p)
        destination[p * nr + j] = j < valid ? source[p * row_stride + j * column_stride] : T(0);
  }
}

template <class T>
void gemm_reference(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t a_row_stride,
                    std::int64_t a_column_stride, const T* b, std::int64_t b_row_stride,
                    std::int64_t b_column_stride, T beta, T* c, std::int64_t c_row_stride) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      T total = 0;
      for (std::int64_t p = 0; p < k; ++p) total += a[i * a_row_stride + p * a_column_stride] * b[p * b_row_stride + j * b_column_stride];
      T& out = c[i * c_row_stride + j];
      out = alpha * total + (beta == T(0) ? T(0) : beta * out);
    }
}

template <class T>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t a_row_stride,
          std::int64_t a_column_stride, const T* b, std::int64_t b_row_stride, std::int64_t b_column_stride, T beta,
          T* c, std::int64_t c_row_stride) {
  if (use_reference_kernels()) {
    gemm_reference(m, n, k, alpha, a, a_row_stride, a_column_stride, b, b_row_stride, b_column_stride, beta, c, c_row_stride);
    return;
  }
  GemmProblem<T> problem;
  problem.m = m, problem.n = n, problem.k = k, problem.alpha = alpha, problem.beta = beta;
  problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                       std::int64_t mr, T* out) {
    pack_a_strided(a, a_row_stride, a_column_stride, row, depth, rows, depths, mr, out);
  };
  problem.pack_b = [&](std::int64_t, std::int64_t depth, std::int64_t column, std::int64_t depths,
                       std::int64_t columns, std::int64_t nr, T* out) {
    pack_b_strided(b, b_row_stride, b_column_stride, depth, column, depths, columns, nr, out);
  };
  problem.a_data = [a](std::int64_t) { return a; };
  problem.a_row_stride = a_row_stride, problem.a_column_stride = a_column_stride;
  problem.c = [c](std::int64_t) { return c; };
  problem.c_row_stride = c_row_stride;
  gemm_run(problem);
}

void select_gemm_kernel(const char* name) { gemm_detail::select_microkernel(name ? name : ""); }

std::vector<std::string> available_gemm_kernels() {
  std::vector<std::string> names;
  for (const auto& kernel : gemm_detail::available_microkernels<float>()) names.push_back(kernel.name);
  return names;
}

std::string active_gemm_kernel() { return gemm_detail::active_microkernel<float>().name; }

GemmKernelScope::GemmKernelScope(const std::string& name) : previous_(gemm_detail::selected_microkernel()) {
  gemm_detail::select_microkernel(name);
}
GemmKernelScope::~GemmKernelScope() { gemm_detail::select_microkernel(previous_, /*check_available=*/false); }

#define DDPM_INSTANTIATE_GEMM(T)                                                                                  \
  template void gemm_run<T>(const GemmProblem<T>&);                                                                 \
  template void pack_a_strided<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,   \
                                  std::int64_t, std::int64_t, T*);                                                  \
  template void pack_b_strided<T>(const T*, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,   \
                                  std::int64_t, std::int64_t, T*);                                                  \
  template void gemm<T>(std::int64_t, std::int64_t, std::int64_t, T, const T*, std::int64_t, std::int64_t,            \
                        const T*, std::int64_t, std::int64_t, T, T*, std::int64_t);                                   \
  template void gemm_reference<T>(std::int64_t, std::int64_t, std::int64_t, T, const T*, std::int64_t,                \
                                  std::int64_t, const T*, std::int64_t, std::int64_t, T, T*, std::int64_t);
DDPM_INSTANTIATE_GEMM(float)
DDPM_INSTANTIATE_GEMM(double)
#undef DDPM_INSTANTIATE_GEMM

}  // namespace ddpm
