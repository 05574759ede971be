#include "tensor/matmul.hpp"

#include <algorithm>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/kernel_path.hpp"
#include "tensor/parallel.hpp"

namespace ddpm {

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

// The fast path: B is packed into a contiguous row-major panel once, then every row of C
// is accumulated as C[i, :] += A[i, p] * B[p, :] in vector registers, p in order. Rows of C
// are independent tasks. (A register-blocked BLIS kernel replaces this in the kernels work.)
template <class T>
void gemm(std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a, std::int64_t a_row_stride,
          std::int64_t a_column_stride, const T* b, std::int64_t b_row_stride, std::int64_t b_column_stride, T beta,
          T* c, std::int64_t c_row_stride) {
  if (use_reference_kernels()) {
    gemm_reference(m, n, k, alpha, a, a_row_stride, a_column_stride, b, b_row_stride, b_column_stride, beta, c, c_row_stride);
    return;
  }
  std::vector<T> packed_b;
  const T* panel = b;
  if (b_column_stride != 1 || b_row_stride != n) {
    packed_b.resize(static_cast<std::size_t>(k * n));
    for (std::int64_t p = 0; p < k; ++p)
      for (std::int64_t j = 0; j < n; ++j) packed_b[p * n + j] = b[p * b_row_stride + j * b_column_stride];
    panel = packed_b.data();
  }
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  constexpr std::int64_t column_block = 256;
  const std::int64_t row_grain = std::max<std::int64_t>(1, 65536 / std::max<std::int64_t>(1, n * k));
  parallel_for(m, row_grain, [&](std::int64_t begin, std::int64_t end) {
    alignas(64) T accumulator[column_block];
    for (std::int64_t i = begin; i < end; ++i) {
      for (std::int64_t j0 = 0; j0 < n; j0 += column_block) {
        const std::int64_t columns = std::min(column_block, n - j0);
        std::fill(accumulator, accumulator + columns, T(0));
        for (std::int64_t p = 0; p < k; ++p) {
          const Batch scale(a[i * a_row_stride + p * a_column_stride]);
          const T* row = panel + p * n + j0;
          std::int64_t j = 0;
          for (; j + width <= columns; j += width)
            xsimd::fma(scale, Batch::load_unaligned(row + j), Batch::load_aligned(accumulator + j)).store_aligned(accumulator + j);
          for (; j < columns; ++j) accumulator[j] += a[i * a_row_stride + p * a_column_stride] * row[j];
        }
        T* out = c + i * c_row_stride + j0;
        for (std::int64_t j = 0; j < columns; ++j)
          out[j] = alpha * accumulator[j] + (beta == T(0) ? T(0) : beta * out[j]);
      }
    }
  });
}

#define DDPM_INSTANTIATE_GEMM(T)                                                                              \
  template void gemm<T>(std::int64_t, std::int64_t, std::int64_t, T, const T*, std::int64_t, std::int64_t,        \
                        const T*, std::int64_t, std::int64_t, T, T*, std::int64_t);                               \
  template void gemm_reference<T>(std::int64_t, std::int64_t, std::int64_t, T, const T*, std::int64_t,            \
                                  std::int64_t, const T*, std::int64_t, std::int64_t, T, T*, std::int64_t);
DDPM_INSTANTIATE_GEMM(float)
DDPM_INSTANTIATE_GEMM(double)
#undef DDPM_INSTANTIATE_GEMM

Tensor matmul(const Tensor& a, const Tensor& b) {
  check(a.defined() && b.defined(), "matmul", "an operand is undefined");
  check(a.rank() >= 2 && b.rank() >= 2, "matmul", "operands must have rank >= 2, got ", shape_string(a.shape()),
        " and ", shape_string(b.shape()));
  check(a.dtype() == b.dtype(), "matmul", "operands have different dtypes: ", dtype_name(a.dtype()), " and ",
        dtype_name(b.dtype()));
  const std::int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  check(b.size(-2) == k, "matmul", "inner dimensions differ: ", shape_string(a.shape()), " x ", shape_string(b.shape()));
  const Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  const Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape full_a = batch, full_b = batch, out_shape = batch;
  full_a.insert(full_a.end(), {m, k});
  full_b.insert(full_b.end(), {k, n});
  out_shape.insert(out_shape.end(), {m, n});
  const Tensor left = a.expand(full_a), right = b.expand(full_b);
  Tensor output = Tensor::empty(out_shape, a.dtype());
  const std::int64_t batches = shape_numel(batch);
  dispatch_floating(a.dtype(), "matmul", [&]<class T>() {
    const T* base_a = static_cast<const T*>(left.storage()->data()) + left.offset();
    const T* base_b = static_cast<const T*>(right.storage()->data()) + right.offset();
    T* out = output.data<T>();
    const std::int64_t rank = static_cast<std::int64_t>(out_shape.size());
    for (std::int64_t index = 0; index < batches; ++index) {
      std::int64_t offset_a = 0, offset_b = 0, remainder = index;
      for (std::int64_t axis = rank - 3; axis >= 0; --axis) {
        const std::int64_t coordinate = remainder % batch[axis];
        remainder /= batch[axis];
        offset_a += coordinate * left.strides()[axis];
        offset_b += coordinate * right.strides()[axis];
      }
      gemm<T>(m, n, k, T(1), base_a + offset_a, left.strides()[rank - 2], left.strides()[rank - 1], base_b + offset_b,
              right.strides()[rank - 2], right.strides()[rank - 1], T(0), out + index * m * n, n);
    }
  });
  return output;
}

}  // namespace ddpm
