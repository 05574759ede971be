#include "nn/layers.hpp"

#include <cmath>

#include "tensor/elementwise.hpp"
#include "tensor/factory.hpp"

namespace ddpm::nn {

Tensor uniform_init(const Shape& shape, double bound, Generator& generator) {
  return sub(mul(rand(shape, generator), 2.0 * bound), bound);
}

Linear::Linear(std::int64_t in_features, std::int64_t out_features, Generator& generator) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight = register_parameter("weight", uniform_init({out_features, in_features}, bound, generator));
  bias = register_parameter("bias", uniform_init({out_features}, bound, generator));
}

Variable Linear::forward(const Variable& x) const {
  check(x.rank() >= 1 && x.size(-1) == weight.size(1), "Linear", "input ", shape_string(x.shape()),
        " does not end in ", weight.size(1), " features");
  if (x.rank() == 2) return add(matmul(x, transpose(weight, 0, 1)), bias);
  // A vector is one row; leading axes are folded into the rows: one product whose weight
  // panels are packed once, not a batch of products that would each pack the same weight.
  Shape shape = x.shape();
  shape.back() = weight.size(0);
  return reshape(add(matmul(reshape(x, {-1, x.size(-1)}), transpose(weight, 0, 1)), bias), shape);
}

Conv2d::Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel, std::int64_t stride,
               std::int64_t padding, Generator& generator)
    : options{stride, padding, 1} {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_channels * kernel * kernel));
  weight = register_parameter("weight", uniform_init({out_channels, in_channels, kernel, kernel}, bound, generator));
  bias = register_parameter("bias", uniform_init({out_channels}, bound, generator));
}

Variable Conv2d::forward(const Variable& x) const { return conv2d(x, weight, bias, options); }

GroupNorm::GroupNorm(std::int64_t groups_count, std::int64_t channels, double epsilon) : groups(groups_count), eps(epsilon) {
  weight = register_parameter("weight", ones({channels}));
  bias = register_parameter("bias", zeros({channels}));
}

Variable GroupNorm::forward(const Variable& x, bool apply_silu) const {
  return group_norm(x, groups, weight, bias, eps, apply_silu);
}

Embedding::Embedding(std::int64_t count, std::int64_t dim, Generator& generator) {
  weight = register_parameter("weight", randn({count, dim}, generator));
}

Variable Embedding::forward(const Tensor& indices) const { return index_select(weight, 0, indices); }

Variable dropout(const Variable& x, double p, bool training, Generator& generator) {
  check(p >= 0.0 && p < 1.0, "dropout", "probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  return ddpm::dropout(x, p, generator);
}

Variable normalize_activate_convolve(const GroupNorm& norm, const Conv2d& conv, const Variable& x, double dropout_p,
                                     bool training, Generator& generator, const Variable& image_bias) {
  return group_norm_silu_conv2d(x, {norm.groups, norm.eps}, norm.weight, norm.bias, training ? dropout_p : 0.0, &generator,
                                conv.weight, conv.bias, conv.options, image_bias);
}

Tensor timestep_embedding(const Tensor& timesteps, std::int64_t dim) {
  check(timesteps.rank() == 1, "timestep_embedding", "timesteps must be 1-D, got ", shape_string(timesteps.shape()));
  check(dim >= 4 && dim % 2 == 0, "timestep_embedding", "dim must be even and >= 4, got ", dim);
  const std::int64_t half = dim / 2;
  const std::vector<double> steps = timesteps.to_vector<double>();
  std::vector<float> values(static_cast<std::size_t>(steps.size() * dim));
  const float scale = static_cast<float>(-std::log(10000.0));
  for (std::size_t b = 0; b < steps.size(); ++b) {
    const float t = static_cast<float>(steps[b]);
    for (std::int64_t i = 0; i < half; ++i) {
      const float frequency = std::exp(scale * static_cast<float>(i) / static_cast<float>(half - 1));
      const float argument = t * frequency;
      values[b * dim + i] = std::sin(argument);
      values[b * dim + half + i] = std::cos(argument);
    }
  }
  return Tensor::from_vector(values, {static_cast<std::int64_t>(steps.size()), dim});
}

}  // namespace ddpm::nn
