// The plain GroupNorm the fast kernels are tested against: two passes in double per group.
#include <cmath>
#include <utility>
#include <vector>

#include "tensor/group_norm.hpp"
#include "tensor/group_norm/group_walk.hpp"

namespace ddpm {

using group_norm_detail::check_inputs;
using group_norm_detail::Layout;

namespace {
// Mean and biased variance of values[begin, begin + size), two plain passes in double.
std::pair<double, double> reference_statistics(const std::vector<double>& values, std::int64_t begin, std::int64_t size) {
  double m = 0, v = 0;
  for (std::int64_t i = 0; i < size; ++i) m += values[begin + i];
  m /= static_cast<double>(size);
  for (std::int64_t i = 0; i < size; ++i) v += (values[begin + i] - m) * (values[begin + i] - m);
  return {m, v / static_cast<double>(size)};
}
}  // namespace

GroupNormOutput group_norm_reference(const Tensor& input, std::int64_t groups, const Tensor& gamma,
                                     const Tensor& beta, double eps, bool apply_silu) {
  const Layout layout = check_inputs("group_norm", input, groups, gamma, beta);
  const auto x = input.to_vector<double>(), g = gamma.to_vector<double>(), b = beta.to_vector<double>();
  std::vector<double> y(x.size()), means(layout.batch * groups), inverse_stds(layout.batch * groups);
  const std::int64_t size = layout.channels_per_group * layout.area;
  for (std::int64_t task = 0; task < layout.batch * groups; ++task) {
    const auto [m, v] = reference_statistics(x, task * size, size);
    const double inverse_std = 1.0 / std::sqrt(v + eps);
    means[task] = m;
    inverse_stds[task] = inverse_std;
    for (std::int64_t i = 0; i < size; ++i) {
      const std::int64_t channel = task % groups * layout.channels_per_group + i / layout.area;
      const double z = (x[task * size + i] - m) * inverse_std * g[channel] + b[channel];
      y[task * size + i] = apply_silu ? z / (1.0 + std::exp(-z)) : z;
    }
  }
  return {Tensor::from_vector(y, input.shape()).to(input.dtype()),
          Tensor::from_vector(means, {layout.batch, groups}).to(input.dtype()),
          Tensor::from_vector(inverse_stds, {layout.batch, groups}).to(input.dtype())};
}

GroupNormGradients group_norm_backward_reference(const Tensor& output_gradient, const Tensor& input,
                                                 std::int64_t groups, const Tensor& gamma, const Tensor& beta,
                                                 double eps, bool apply_silu) {
  // The textbook formula, written independently of the fused kernel: with x̂ normalised,
  // dz the gradient at the affine output, N the group size,
  // dx = (1/σ) (γ dz - mean(γ dz) - x̂ mean(γ dz x̂)), dγ = Σ dz x̂, dβ = Σ dz.
  const Layout layout = check_inputs("group_norm_backward", input, groups, gamma, beta);
  const auto x = input.to_vector<double>(), dy = output_gradient.to_vector<double>();
  const auto g = gamma.to_vector<double>(), b = beta.to_vector<double>();
  std::vector<double> dx(x.size()), dg(layout.channels, 0.0), db(layout.channels, 0.0);
  const std::int64_t size = layout.channels_per_group * layout.area;
  for (std::int64_t task = 0; task < layout.batch * groups; ++task) {
    const auto [m, v] = reference_statistics(x, task * size, size);
    const double sigma = std::sqrt(v + eps);
    std::vector<double> xhat(size), dz_gamma(size);
    double mean_a = 0, mean_b = 0;
    for (std::int64_t i = 0; i < size; ++i) {
      const std::int64_t channel = task % groups * layout.channels_per_group + i / layout.area;
      xhat[i] = (x[task * size + i] - m) / sigma;
      const double z = xhat[i] * g[channel] + b[channel];
      const double s = 1.0 / (1.0 + std::exp(-z));
      const double dz = dy[task * size + i] * (apply_silu ? s + z * s * (1.0 - s) : 1.0);
      dg[channel] += dz * xhat[i];
      db[channel] += dz;
      dz_gamma[i] = dz * g[channel];
      mean_a += dz_gamma[i];
      mean_b += dz_gamma[i] * xhat[i];
    }
    mean_a /= static_cast<double>(size);
    mean_b /= static_cast<double>(size);
    for (std::int64_t i = 0; i < size; ++i) dx[task * size + i] = (dz_gamma[i] - mean_a - xhat[i] * mean_b) / sigma;
  }
  return {Tensor::from_vector(dx, input.shape()).to(input.dtype()),
          Tensor::from_vector(dg, gamma.shape()).to(input.dtype()), Tensor::from_vector(db, beta.shape()).to(input.dtype())};
}

}  // namespace ddpm
