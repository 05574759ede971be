#include "tensor/joining.hpp"

#include "tensor/elementwise.hpp"
#include "tensor/factory.hpp"

namespace ddpm {

Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis) {
  check(!tensors.empty(), "concat", "needs at least one tensor");
  const Tensor& first = tensors.front();
  axis = normalize_axis(axis, first.rank(), "concat");
  Shape shape = first.shape();
  shape[axis] = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    check(t.dtype() == first.dtype(), "concat", "tensor ", i, " is ", dtype_name(t.dtype()), ", tensor 0 is ",
          dtype_name(first.dtype()));
    check(t.rank() == first.rank(), "concat", "tensor ", i, " has shape ", shape_string(t.shape()),
          ", tensor 0 has shape ", shape_string(first.shape()));
    for (std::int64_t a = 0; a < first.rank(); ++a)
      check(a == axis || t.shape()[a] == first.shape()[a], "concat", "tensor ", i, " has shape ",
            shape_string(t.shape()), ", tensor 0 has shape ", shape_string(first.shape()), " (they may differ only on axis ",
            axis, ")");
    shape[axis] += t.shape()[axis];
  }
  Tensor output = Tensor::empty(shape, first.dtype());
  std::int64_t start = 0;
  for (const Tensor& t : tensors) {
    output.narrow(axis, start, t.shape()[axis]).copy_(t);
    start += t.shape()[axis];
  }
  return output;
}

std::vector<Tensor> split(const Tensor& input, const std::vector<std::int64_t>& sizes, std::int64_t axis) {
  axis = normalize_axis(axis, input.rank(), "split");
  std::int64_t total = 0;
  for (std::int64_t size : sizes) {
    check(size >= 0, "split", "negative size ", size);
    total += size;
  }
  check(total == input.shape()[axis], "split", "sizes add up to ", total, " but axis ", axis, " of ",
        shape_string(input.shape()), " has size ", input.shape()[axis]);
  std::vector<Tensor> pieces;
  std::int64_t start = 0;
  for (std::int64_t size : sizes) {
    pieces.push_back(input.narrow(axis, start, size));
    start += size;
  }
  return pieces;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis) {
  check(!tensors.empty(), "stack", "needs at least one tensor");
  axis = normalize_axis(axis, tensors.front().rank() + 1, "stack");
  std::vector<Tensor> expanded;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    check(tensors[i].shape() == tensors.front().shape(), "stack", "tensor ", i, " has shape ",
          shape_string(tensors[i].shape()), ", tensor 0 has shape ", shape_string(tensors.front().shape()));
    expanded.push_back(tensors[i].unsqueeze(axis));
  }
  return concat(expanded, axis);
}

namespace {
void check_index_tensor(const Tensor& index, const char* op) {
  check(index.defined(), op, "index is undefined");
  check(index.dtype() == DType::Int64, op, "index must be int64, got ", dtype_name(index.dtype()));
}
}  // namespace

Tensor index_select(const Tensor& input, std::int64_t axis, const Tensor& index) {
  check_index_tensor(index, "index_select");
  check(index.rank() == 1, "index_select", "index must be 1-D, got shape ", shape_string(index.shape()));
  axis = normalize_axis(axis, input.rank(), "index_select");
  const std::vector<std::int64_t> rows = index.to_vector<std::int64_t>();
  Shape shape = input.shape();
  shape[axis] = static_cast<std::int64_t>(rows.size());
  Tensor output = Tensor::empty(shape, input.dtype());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    check(rows[i] >= 0 && rows[i] < input.shape()[axis], "index_select", "index ", rows[i], " at position ", i,
          " is out of range for axis ", axis, " of size ", input.shape()[axis]);
    output.narrow(axis, static_cast<std::int64_t>(i), 1).copy_(input.narrow(axis, rows[i], 1));
  }
  return output;
}

Tensor index_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& source) {
  check_index_tensor(index, "index_add");
  axis = normalize_axis(axis, static_cast<std::int64_t>(shape.size()), "index_add");
  const std::vector<std::int64_t> rows = index.to_vector<std::int64_t>();
  Tensor output = zeros(shape, source.dtype());
  // Rows in index order, so repeated indices accumulate in a fixed order.
  for (std::size_t i = 0; i < rows.size(); ++i) {
    check(rows[i] >= 0 && rows[i] < shape[axis], "index_add", "index ", rows[i], " is out of range for axis ", axis,
          " of size ", shape[axis]);
    Tensor target = output.narrow(axis, rows[i], 1);
    target.copy_(add(target, source.narrow(axis, static_cast<std::int64_t>(i), 1)));
  }
  return output;
}

namespace {
// Walks every position of `index` and calls visit(position in index order, offset of the
// corresponding element in a contiguous tensor of `shape` after replacing the axis).
template <class Visit>
void for_each_gathered(const Shape& shape, std::int64_t axis, const Tensor& index, const char* op, Visit&& visit) {
  const Tensor positions = index.contiguous();
  const std::int64_t* values = positions.data<std::int64_t>();
  const Strides strides = contiguous_strides(shape);
  const Shape& index_shape = positions.shape();
  for (std::int64_t linear = 0; linear < positions.numel(); ++linear) {
    std::int64_t remainder = linear, offset = 0;
    for (std::int64_t a = static_cast<std::int64_t>(index_shape.size()) - 1; a >= 0; --a) {
      const std::int64_t coordinate = remainder % index_shape[a];
      remainder /= index_shape[a];
      if (a == axis) {
        const std::int64_t target = values[linear];
        check(target >= 0 && target < shape[a], op, "index ", target, " is out of range for axis ", axis,
              " of size ", shape[a]);
        offset += target * strides[a];
      } else {
        offset += coordinate * strides[a];
      }
    }
    visit(linear, offset);
  }
}

void check_gather_shapes(const Shape& shape, std::int64_t axis, const Tensor& index, const char* op) {
  check(index.rank() == static_cast<std::int64_t>(shape.size()), op, "index has shape ", shape_string(index.shape()),
        ", input has shape ", shape_string(shape), " (ranks must match)");
  for (std::int64_t a = 0; a < index.rank(); ++a)
    check(a == axis || index.shape()[a] <= shape[a], op, "index shape ", shape_string(index.shape()),
          " exceeds input shape ", shape_string(shape), " on axis ", a);
}
}  // namespace

Tensor gather(const Tensor& input, std::int64_t axis, const Tensor& index) {
  check_index_tensor(index, "gather");
  axis = normalize_axis(axis, input.rank(), "gather");
  check_gather_shapes(input.shape(), axis, index, "gather");
  const Tensor source = input.contiguous();
  Tensor output = Tensor::empty(index.shape(), input.dtype());
  dispatch_all(input.dtype(), [&]<class T>() {
    const T* in = source.data<T>();
    T* out = output.data<T>();
    for_each_gathered(input.shape(), axis, index, "gather",
                      [&](std::int64_t position, std::int64_t offset) { out[position] = in[offset]; });
  });
  return output;
}

Tensor scatter_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& source) {
  check_index_tensor(index, "scatter_add");
  axis = normalize_axis(axis, static_cast<std::int64_t>(shape.size()), "scatter_add");
  check_gather_shapes(shape, axis, index, "scatter_add");
  check(source.shape() == index.shape(), "scatter_add", "source shape ", shape_string(source.shape()),
        " differs from index shape ", shape_string(index.shape()));
  Tensor output = zeros(shape, source.dtype());
  const Tensor values = source.contiguous();
  dispatch_all(source.dtype(), [&]<class T>() {
    const T* in = values.data<T>();
    T* out = output.data<T>();
    for_each_gathered(shape, axis, index, "scatter_add",
                      [&](std::int64_t position, std::int64_t offset) { out[offset] += in[position]; });
  });
  return output;
}

}  // namespace ddpm
