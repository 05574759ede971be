// Views, joins and indexing. Their gradients move the output gradient back to where the
// input's elements came from.
#include "autograd/functions.hpp"
#include "tensor/factory.hpp"
#include "tensor/joining.hpp"

namespace ddpm {

using Gradients = std::vector<Tensor>;

Variable reshape(const Variable& x, const Shape& shape) {
  const Shape input_shape = x.shape();
  return Variable::from_op(x.value().reshape(shape), "reshape", {x},
                           [input_shape](const Tensor& g) { return Gradients{g.reshape(input_shape)}; });
}

Variable permute(const Variable& x, const std::vector<std::int64_t>& order) {
  Tensor y = x.value().permute(order);
  std::vector<std::int64_t> inverse(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) inverse[normalize_axis(order[i], x.rank(), "permute")] = static_cast<std::int64_t>(i);
  return Variable::from_op(y, "permute", {x}, [inverse](const Tensor& g) { return Gradients{g.permute(inverse)}; });
}

Variable transpose(const Variable& x, std::int64_t axis_a, std::int64_t axis_b) {
  return Variable::from_op(x.value().transpose(axis_a, axis_b), "transpose", {x},
                           [=](const Tensor& g) { return Gradients{g.transpose(axis_a, axis_b)}; });
}

namespace {
// Zeros of the input's shape with g written into the region `region` selects.
template <class Region>
Tensor embed(const Tensor& g, const Shape& input_shape, Region&& region) {
  Tensor full = zeros(input_shape, g.dtype());
  Tensor target = region(full);
  target.copy_(g);
  return full;
}
}  // namespace

Variable narrow(const Variable& x, std::int64_t axis, std::int64_t start, std::int64_t length) {
  const Shape shape = x.shape();
  return Variable::from_op(x.value().narrow(axis, start, length), "narrow", {x}, [=](const Tensor& g) {
    return Gradients{embed(g, shape, [&](const Tensor& t) { return t.narrow(axis, start, length); })};
  });
}

Variable slice(const Variable& x, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step) {
  const Shape shape = x.shape();
  return Variable::from_op(x.value().slice(axis, start, end, step), "slice", {x}, [=](const Tensor& g) {
    return Gradients{embed(g, shape, [&](const Tensor& t) { return t.slice(axis, start, end, step); })};
  });
}

Variable expand(const Variable& x, const Shape& shape) {
  const Shape input_shape = x.shape();
  return Variable::from_op(x.value().expand(shape), "expand", {x},
                           [input_shape](const Tensor& g) { return Gradients{sum_to_shape(g, input_shape)}; });
}

Variable squeeze(const Variable& x, std::int64_t axis) {
  const Shape input_shape = x.shape();
  return Variable::from_op(x.value().squeeze(axis), "squeeze", {x},
                           [input_shape](const Tensor& g) { return Gradients{g.reshape(input_shape)}; });
}

Variable unsqueeze(const Variable& x, std::int64_t axis) {
  const Shape input_shape = x.shape();
  return Variable::from_op(x.value().unsqueeze(axis), "unsqueeze", {x},
                           [input_shape](const Tensor& g) { return Gradients{g.reshape(input_shape)}; });
}

Variable contiguous(const Variable& x) {
  return Variable::from_op(x.value().contiguous(), "contiguous", {x}, [](const Tensor& g) { return Gradients{g}; });
}

Variable to_dtype(const Variable& x, DType dtype) {
  const DType input_dtype = x.dtype();
  return Variable::from_op(x.value().to(dtype), "to_dtype", {x},
                           [input_dtype](const Tensor& g) { return Gradients{g.to(input_dtype)}; });
}

Variable concat(const std::vector<Variable>& xs, std::int64_t axis) {
  std::vector<Tensor> values;
  std::vector<std::int64_t> sizes;
  for (const Variable& x : xs) values.push_back(x.value());
  Tensor y = concat(values, axis);
  axis = normalize_axis(axis, y.rank(), "concat");
  for (const Variable& x : xs) sizes.push_back(x.shape()[axis]);
  return Variable::from_op(y, "concat", xs, [sizes, axis](const Tensor& g) { return split(g, sizes, axis); });
}

std::vector<Variable> split(const Variable& x, const std::vector<std::int64_t>& sizes, std::int64_t axis) {
  // Validates like the tensor op, then each piece is a narrow of x.
  split(x.value(), sizes, axis);
  std::vector<Variable> pieces;
  std::int64_t start = 0;
  for (std::int64_t size : sizes) {
    pieces.push_back(narrow(x, axis, start, size));
    start += size;
  }
  return pieces;
}

Variable stack(const std::vector<Variable>& xs, std::int64_t axis) {
  check(!xs.empty(), "stack", "needs at least one tensor");
  axis = normalize_axis(axis, xs.front().rank() + 1, "stack");
  std::vector<Variable> expanded;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    check(xs[i].shape() == xs.front().shape(), "stack", "tensor ", i, " has shape ", shape_string(xs[i].shape()),
          ", tensor 0 has shape ", shape_string(xs.front().shape()));
    expanded.push_back(unsqueeze(xs[i], axis));
  }
  return concat(expanded, axis);
}

Variable index_select(const Variable& x, std::int64_t axis, const Tensor& index) {
  const Shape shape = x.shape();
  return Variable::from_op(index_select(x.value(), axis, index), "index_select", {x},
                           [=](const Tensor& g) { return Gradients{index_add(shape, axis, index, g)}; });
}

Variable gather(const Variable& x, std::int64_t axis, const Tensor& index) {
  const Shape shape = x.shape();
  return Variable::from_op(gather(x.value(), axis, index), "gather", {x},
                           [=](const Tensor& g) { return Gradients{scatter_add(shape, axis, index, g)}; });
}

}  // namespace ddpm
