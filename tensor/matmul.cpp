#include "tensor/matmul.hpp"

#include <algorithm>
#include <vector>

#include "tensor/kernel_path.hpp"

namespace ddpm {

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
    // Element offsets of batch `index` in each operand (broadcast batch axes have stride 0).
    auto batch_offsets = [&](std::int64_t index) {
      std::int64_t offset_a = 0, offset_b = 0;
      for (std::int64_t axis = rank - 3; axis >= 0; --axis) {
        const std::int64_t coordinate = index % batch[axis];
        index /= batch[axis];
        offset_a += coordinate * left.strides()[axis];
        offset_b += coordinate * right.strides()[axis];
      }
      return std::pair{offset_a, offset_b};
    };
    const std::int64_t a_rows = left.strides()[rank - 2], a_columns = left.strides()[rank - 1];
    const std::int64_t b_rows = right.strides()[rank - 2], b_columns = right.strides()[rank - 1];
    if (use_reference_kernels()) {
      for (std::int64_t index = 0; index < batches; ++index) {
        const auto [offset_a, offset_b] = batch_offsets(index);
        gemm_reference<T>(m, n, k, T(1), base_a + offset_a, a_rows, a_columns, base_b + offset_b, b_rows, b_columns,
                          T(0), out + index * m * n, n);
      }
      return;
    }
    // One problem over all batches, so small products (attention per image) share the threads.
    GemmProblem<T> problem;
    problem.batches = batches, problem.m = m, problem.n = n, problem.k = k;
    problem.pack_a = [&](std::int64_t index, std::int64_t row, std::int64_t depth, std::int64_t rows,
                         std::int64_t depths, std::int64_t mr, T* panel) {
      pack_a_strided(base_a + batch_offsets(index).first, a_rows, a_columns, row, depth, rows, depths, mr, panel);
    };
    problem.pack_b = [&](std::int64_t index, std::int64_t depth, std::int64_t column, std::int64_t depths,
                         std::int64_t columns, std::int64_t nr, T* panel) {
      pack_b_strided(base_b + batch_offsets(index).second, b_rows, b_columns, depth, column, depths, columns, nr, panel);
    };
    problem.a_data = [&](std::int64_t index) { return base_a + batch_offsets(index).first; };
    problem.a_row_stride = a_rows, problem.a_column_stride = a_columns;
    problem.c = [&](std::int64_t index) { return out + index * m * n; };
    problem.c_row_stride = n;
    gemm_run(problem);
  });
  return output;
}

}  // namespace ddpm
