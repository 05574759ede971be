#pragma once
// Finite-difference gradient checking, for tests and for users writing their own ops.
// The function's output is projected on a fixed random vector r, so one backward pass
// gives the analytic gradient of <f(x), r>, compared element by element with a central
// difference of the same scalar. Use float64 inputs: float32 differences are too noisy.
#include <functional>
#include <string>
#include <vector>

#include "autograd/variable.hpp"

namespace ddpm {

struct GradientCheckOptions {
  double step = 1e-6;
  int stencil_points = 2;  // 2: (f(x+h) - f(x-h)) / 2h;  4: fourth-order five-point stencil
  double absolute_tolerance = 1e-6;
  double relative_tolerance = 1e-5;
  // Elements whose value lies within the stencil's reach of one of these points are skipped
  // (|x|'s kink at 0, say).
  std::vector<double> kinks;
  // Any other element to skip: (inputs, input number, linear element index) -> skip?
  std::function<bool(const std::vector<Tensor>&, std::size_t, std::int64_t)> skip;
  std::uint64_t seed = 1234;  // of the projection vector
};

struct GradientCheckResult {
  bool passed = true;
  double max_absolute_error = 0;
  double max_relative_error = 0;
  std::int64_t checked = 0;
  std::int64_t skipped = 0;
  std::string message;  // the first failing element, when any
};

using DifferentiableFunction = std::function<Variable(const std::vector<Variable>&)>;

// Checks d<function(inputs), r>/d inputs. Inputs keep their layout (a permuted or sliced
// view is perturbed in place), so non-contiguous paths are checked too.
GradientCheckResult check_gradients(const DifferentiableFunction& function, const std::vector<Tensor>& inputs,
                                    const GradientCheckOptions& options = {});

}  // namespace ddpm
