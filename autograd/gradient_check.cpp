#include "autograd/gradient_check.hpp"

#include <cmath>
#include <sstream>

#include "tensor/elementwise.hpp"
#include "tensor/random.hpp"
#include "tensor/reduction.hpp"

namespace ddpm {
namespace {

// Storage offset of the element with row-major linear index `linear` in a strided view.
std::int64_t element_offset(const Tensor& tensor, std::int64_t linear) {
  std::int64_t offset = tensor.offset();
  for (std::int64_t axis = tensor.rank() - 1; axis >= 0; --axis) {
    offset += (linear % tensor.shape()[axis]) * tensor.strides()[axis];
    linear /= tensor.shape()[axis];
  }
  return offset;
}

// Writes without bumping the version: the perturbed runs record no graph.
void set_element(Tensor& tensor, std::int64_t linear, double value) {
  const std::int64_t offset = element_offset(tensor, linear);
  dispatch_floating(tensor.dtype(), "check_gradients", [&]<class T>() {
    static_cast<T*>(tensor.storage()->data())[offset] = static_cast<T>(value);
  });
}

double get_element(const Tensor& tensor, std::int64_t linear) {
  const std::int64_t offset = element_offset(tensor, linear);
  return dispatch_floating(tensor.dtype(), "check_gradients", [&]<class T>() {
    return static_cast<double>(static_cast<const T*>(tensor.storage()->data())[offset]);
  });
}

}  // namespace

GradientCheckResult check_gradients(const DifferentiableFunction& function, const std::vector<Tensor>& inputs,
                                    const GradientCheckOptions& options) {
  check(options.stencil_points == 2 || options.stencil_points == 4, "check_gradients",
        "stencil_points must be 2 or 4, got ", options.stencil_points);
  std::vector<Tensor> points = inputs;  // same views: perturbed in place, restored after
  std::vector<Variable> variables;
  for (const Tensor& input : points) variables.emplace_back(input, is_floating(input.dtype()));

  const Variable output = function(variables);
  Generator generator(options.seed);
  const Tensor projection = randn(output.shape(), generator, output.dtype());
  auto projected = [&](const Variable& out) { return sum(mul(out.value(), projection)).item(); };
  Variable(output).backward(projection);

  GradientCheckResult result;
  const double h = options.step;
  const double reach = options.stencil_points == 4 ? 2 * h : h;
  auto evaluate = [&](Tensor& input, std::int64_t element, double value) {
    set_element(input, element, value);
    NoGrad no_grad;
    return projected(function(variables));
  };
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (!is_floating(points[i].dtype())) continue;
    const Tensor analytic = variables[i].has_grad() ? variables[i].grad() : Tensor();
    for (std::int64_t element = 0; element < points[i].numel(); ++element) {
      const double x = get_element(points[i], element);
      bool skip = options.skip && options.skip(points, i, element);
      for (double kink : options.kinks) skip = skip || std::abs(x - kink) <= 2 * reach;
      if (skip) {
        ++result.skipped;
        continue;
      }
      double numeric;
      if (options.stencil_points == 2) {
        numeric = (evaluate(points[i], element, x + h) - evaluate(points[i], element, x - h)) / (2 * h);
      } else {
        numeric = (-evaluate(points[i], element, x + 2 * h) + 8 * evaluate(points[i], element, x + h) -
                   8 * evaluate(points[i], element, x - h) + evaluate(points[i], element, x - 2 * h)) / (12 * h);
      }
      set_element(points[i], element, x);
      const double exact = analytic.defined() ? get_element(analytic, element) : 0.0;
      const double error = std::abs(exact - numeric);
      const double relative = error / std::max(std::abs(numeric), 1e-12);
      ++result.checked;
      result.max_absolute_error = std::max(result.max_absolute_error, error);
      if (error > options.absolute_tolerance) result.max_relative_error = std::max(result.max_relative_error, relative);
      if (error > options.absolute_tolerance + options.relative_tolerance * std::abs(numeric) && result.passed) {
        result.passed = false;
        std::ostringstream message;
        message.precision(10);
        message << "input " << i << " element " << element << " (value " << x << "): analytic " << exact
                << ", numeric " << numeric << ", error " << error;
        result.message = message.str();
      }
    }
  }
  return result;
}

}  // namespace ddpm
