#pragma once
// GEMM in the BLIS structure (Van Zee & van de Geijn 2015): loops over blocks of C, and
// over the depth in blocks of KC, around one register microkernel that multiplies packed,
// zero-padded panels. Operands reach the packers through functions, so a matrix can be any
// strided view (a transpose costs nothing) or something computed while packing (the
// im2col of a convolution, never materialised).
//
// Determinism: each C tile is the sum over depth blocks in order, each block a fixed
// sequence of FMAs, whatever thread runs it; tasks only split C. So results are bitwise
// identical for any thread count.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ddpm {

// How tasks split the work (the arithmetic is the same either way). Auto shares packed B
// blocks for large products and runs independent tasks for many small ones; SharedPanels
// suits a short, wide C with a very long depth (a convolution's weight gradient).
enum class GemmSchedule { Auto, SharedPanels, IndependentTasks };

template <class T>
struct GemmProblem {
  GemmSchedule schedule = GemmSchedule::Auto;
  std::int64_t batches = 1;  // independent products C_b = alpha A_b B_b + beta C_b
  std::int64_t m = 0, n = 0, k = 0;
  T alpha = 1, beta = 0;
  // Writes rows [row, row + rows) x depth [depth, depth + depths) of A_b as ceil(rows/mr)
  // panels of depths x mr values (row fastest), zero-padded past the last row.
  std::function<void(std::int64_t b, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                     std::int64_t mr, T* out)> pack_a;
  // Writes depth [depth, depth + depths) x columns [column, column + columns) of B_b as
  // ceil(columns/nr) panels of depths x nr values (column fastest), zero-padded.
  std::function<void(std::int64_t b, std::int64_t depth, std::int64_t column, std::int64_t depths,
                     std::int64_t columns, std::int64_t nr, T* out)> pack_b;
  // C_b's first element; rows are c_row_stride apart, columns contiguous.
  std::function<T*(std::int64_t b)> c;
  std::int64_t c_row_stride = 0;
  // A is the same matrix for every batch (a convolution's weights): pack it once.
  bool a_same_for_all_batches = false;
  // Optional: A_b is a plain strided matrix, element (i, p) at a_data(b)[i·a_row_stride +
  // p·a_column_stride]. A product with few columns (N <= 4 NR) would use each packed A
  // panel for only a panel or four of B, so there the microkernel reads A where it lies
  // (its gathered form) instead of packing it.
  std::function<const T*(std::int64_t b)> a_data;
  std::int64_t a_row_stride = 0, a_column_stride = 0;
};

template <class T>
void gemm_run(const GemmProblem<T>& problem);

// Writes ceil(rows/mr) A panels (depths x mr values each, zero-padded) from rows made one
// at a time: row_values(i, line) fills line[0 .. depths) with row i of the block.
template <class T, class RowValues>
void pack_a_by_rows(std::int64_t rows, std::int64_t depths, std::int64_t mr, T* out, RowValues&& row_values) {
  thread_local std::vector<T> line;
  line.resize(static_cast<std::size_t>(depths));
  for (std::int64_t panel = 0; panel * mr < rows; ++panel) {
    T* destination = out + panel * mr * depths;
    for (std::int64_t r = 0; r < mr; ++r) {
      const std::int64_t row = panel * mr + r;
      if (row < rows) row_values(row, line.data());
      for (std::int64_t p = 0; p < depths; ++p) destination[p * mr + r] = row < rows ? line[p] : T(0);
    }
  }
}

// Packers for plain strided matrices: element (i, j) at data[i * row_stride + j * column_stride].
template <class T>
void pack_a_strided(const T* data, std::int64_t row_stride, std::int64_t column_stride, std::int64_t row,
                    std::int64_t depth, std::int64_t rows, std::int64_t depths, std::int64_t mr, T* out);
template <class T>
void pack_b_strided(const T* data, std::int64_t row_stride, std::int64_t column_stride, std::int64_t depth,
                    std::int64_t column, std::int64_t depths, std::int64_t columns, std::int64_t nr, T* out);

// C[M, N] = alpha * A[M, K] · B[K, N] + beta * C on strided matrices; C is row-major with
// leading dimension c_row_stride.
template <class T>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t a_row_stride,
          std::int64_t a_column_stride, const T* b, std::int64_t b_row_stride, std::int64_t b_column_stride, T beta,
          T* c, std::int64_t c_row_stride);

// The plain triple loop the fast gemm is tested against.
template <class T>
void gemm_reference(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t a_row_stride,
                    std::int64_t a_column_stride, const T* b, std::int64_t b_row_stride,
                    std::int64_t b_column_stride, T beta, T* c, std::int64_t c_row_stride);

// Selects the microkernel by name ("avx512", "avx2", "sse2"; "" = best available), and
// lists those this CPU can run. The environment variable DDPM_GEMM_KERNEL does the same.
void select_gemm_kernel(const char* name);
std::vector<std::string> available_gemm_kernels();
std::string active_gemm_kernel();

// The kernel in use within a scope: selects `name` and restores the previous selection
// (a name, DDPM_GEMM_KERNEL's, or "best available") when the scope ends, so a test that
// runs every kernel leaves the one the process was started with.
class GemmKernelScope {
 public:
  explicit GemmKernelScope(const std::string& name);
  ~GemmKernelScope();
  GemmKernelScope(const GemmKernelScope&) = delete;
  GemmKernelScope& operator=(const GemmKernelScope&) = delete;

 private:
  std::string previous_;
};

}  // namespace ddpm
