// The convolution's definition, loop by loop, accumulating in double: what the fast
// kernels of convolution.cpp are tested against (and what ReferenceKernels runs).
#include <vector>

#include "tensor/convolution.hpp"
#include "tensor/convolution/geometry.hpp"

namespace ddpm {

using convolution_detail::Geometry;
using convolution_detail::make_geometry;

namespace {
// Calls visit(input offset, weight offset, output offset) for every (image, output channel,
// output pixel, input channel, kernel tap) whose input pixel lies inside the image.
template <class Visit>
void for_each_tap(const Geometry& g, Visit&& visit) {
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t co = 0; co < g.out_channels; ++co)
      for (std::int64_t oh = 0; oh < g.out_height; ++oh)
        for (std::int64_t ow = 0; ow < g.out_width; ++ow)
          for (std::int64_t ci = 0; ci < g.in_channels; ++ci)
            for (std::int64_t kh = 0; kh < g.kernel_height; ++kh)
              for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
                const std::int64_t ih = oh * g.stride - g.padding + kh * g.dilation;
                const std::int64_t iw = ow * g.stride - g.padding + kw * g.dilation;
                if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
                visit(((n * g.in_channels + ci) * g.height + ih) * g.width + iw,
                      ((co * g.in_channels + ci) * g.kernel_height + kh) * g.kernel_width + kw,
                      ((n * g.out_channels + co) * g.out_height + oh) * g.out_width + ow);
              }
}
}  // namespace

Tensor conv2d_reference(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input.shape(), weight.shape(), options, "conv2d");
  const auto x = input.to_vector<double>(), w = weight.to_vector<double>();
  const Shape shape{g.batch, g.out_channels, g.out_height, g.out_width};
  std::vector<double> y(static_cast<std::size_t>(shape_numel(shape)), 0.0);
  if (bias.defined()) {
    const auto b = bias.to_vector<double>();
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = b[i / static_cast<std::size_t>(g.out_area()) % g.out_channels];
  }
  for_each_tap(g, [&](std::int64_t in, std::int64_t tap, std::int64_t out) { y[out] += x[in] * w[tap]; });
  return Tensor::from_vector(y, shape).to(input.dtype());
}

Tensor conv2d_input_gradient_reference(const Tensor& output_gradient, const Tensor& weight, const Shape& input_shape,
                                       const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input_shape, weight.shape(), options, "conv2d_input_gradient");
  const auto dy = output_gradient.to_vector<double>(), w = weight.to_vector<double>();
  std::vector<double> dx(static_cast<std::size_t>(shape_numel(input_shape)), 0.0);
  for_each_tap(g, [&](std::int64_t in, std::int64_t tap, std::int64_t out) { dx[in] += dy[out] * w[tap]; });
  return Tensor::from_vector(dx, input_shape).to(output_gradient.dtype());
}

Tensor conv2d_weight_gradient_reference(const Tensor& output_gradient, const Tensor& input, const Shape& weight_shape,
                                        const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input.shape(), weight_shape, options, "conv2d_weight_gradient");
  const auto dy = output_gradient.to_vector<double>(), x = input.to_vector<double>();
  std::vector<double> dw(static_cast<std::size_t>(shape_numel(weight_shape)), 0.0);
  for_each_tap(g, [&](std::int64_t in, std::int64_t tap, std::int64_t out) { dw[tap] += dy[out] * x[in]; });
  return Tensor::from_vector(dw, weight_shape).to(input.dtype());
}

}  // namespace ddpm
