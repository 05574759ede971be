// Reductions and their gradients: the output gradient is reshaped to keepdim form and
// broadcast back over the reduced axes.
#include "autograd/functions.hpp"
#include "tensor/elementwise.hpp"

namespace ddpm {

using Gradients = std::vector<Tensor>;

namespace {
// g of a reduction's output, as a tensor broadcastable against the input.
Tensor kept(const Tensor& g, const Shape& input_shape, const Axes& axes) {
  return g.reshape(reduced_shape(input_shape, axes, true));
}

std::int64_t reduced_count(const Shape& shape, const Axes& axes) {
  std::int64_t count = 1;
  for (std::int64_t axis : axes) count *= shape[axis];
  return count;
}
}  // namespace

Variable sum(const Variable& x, const Axes& axes, bool keepdim) {
  const Shape shape = x.shape();
  const Axes reduced = normalize_axes(axes, x.rank(), "sum");
  return Variable::from_op(sum(x.value(), reduced, keepdim), "sum", {x}, [=](const Tensor& g) {
    return Gradients{kept(g, shape, reduced).expand(shape).contiguous()};
  });
}

Variable mean(const Variable& x, const Axes& axes, bool keepdim) {
  const Shape shape = x.shape();
  const Axes reduced = normalize_axes(axes, x.rank(), "mean");
  const double scale = 1.0 / static_cast<double>(reduced_count(shape, reduced));
  return Variable::from_op(mean(x.value(), reduced, keepdim), "mean", {x}, [=](const Tensor& g) {
    return Gradients{mul(kept(g, shape, reduced), scale).expand(shape).contiguous()};
  });
}

namespace {
// amax/amin: the gradient is shared equally among the elements equal to the extremum.
Variable extremum(const Variable& x, const Axes& axes, bool keepdim, bool take_max) {
  const char* name = take_max ? "max" : "min";
  const Axes reduced = normalize_axes(axes, x.rank(), name);
  Tensor y = take_max ? max(x.value(), reduced, true) : min(x.value(), reduced, true);
  SavedTensor input(x.value(), name), output(y, name);
  Tensor result = keepdim ? y : y.reshape(reduced_shape(x.shape(), reduced, false));
  return Variable::from_op(result, name, {x}, [=](const Tensor& g) {
    const Tensor& x = input.get();
    const Tensor winners = eq(x, output.get());
    const Tensor share = div(winners, sum(winners, reduced, true));
    return Gradients{mul(share, kept(g, x.shape(), reduced))};
  });
}
}  // namespace

Variable max(const Variable& x, const Axes& axes, bool keepdim) { return extremum(x, axes, keepdim, true); }
Variable min(const Variable& x, const Axes& axes, bool keepdim) { return extremum(x, axes, keepdim, false); }

Variable var(const Variable& x, const Axes& axes, bool keepdim, double correction) {
  // d var / dx = 2 (x - mean) / (N - correction)
  const Axes reduced = normalize_axes(axes, x.rank(), "var");
  const double denominator = static_cast<double>(reduced_count(x.shape(), reduced)) - correction;
  SavedTensor input(x.value(), "var");
  return Variable::from_op(var(x.value(), reduced, keepdim, correction), "var", {x}, [=](const Tensor& g) {
    const Tensor& x = input.get();
    const Tensor centered = sub(x, mean(x, reduced, true));
    return Gradients{mul(mul(centered, 2.0 / denominator), kept(g, x.shape(), reduced))};
  });
}

}  // namespace ddpm
