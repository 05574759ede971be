// The dispatcher of tensor/convolution.hpp: each entry point validates its shapes, then
// hands the work to the first algorithm of tensor/convolution/ that suits the geometry,
// in an order set by measurement (bench_unet_kernels, every U-Net shape at batch 64):
//   1. Winograd F(4x4, 3x3) (winograd.hpp; F(2x2, 3x3) by choice, select_winograd_tile):
//      3x3, stride 1, >= 16 channels each way; 36 products per 4x4 block where the others
//      take 144 (res 64->64 @14, batch 64, AMD EPYC Zen 4 with AVX-512: F(2x2) 4.5 ms,
//      F(4x4) 4.1 ms; F(2x2) was 0.62x the time of the next path on a Zen 3).
//   2. shifted (shifted.hpp): the input planes read in place by the gathered microkernel;
//      beats packing them when there are at least half a panel of outputs and a deep
//      enough product (a 1x1 kernel over 32 channels was 1.4x slower than the packed path).
//   3. direct (direct.hpp): a handful of output channels (conv_out), where a GEMM tile would
//      be mostly padding (7.0 -> 2.9 ms at batch 64).
//   4. implicit GEMM (implicit_gemm.hpp): anything, the taps packed from padded planes.
// Every path sums each output in a fixed order: the choice never depends on the thread
// count, and neither do the bits.
#include "tensor/convolution.hpp"

#include <vector>

#include "tensor/attention.hpp"
#include "tensor/convolution/direct.hpp"
#include "tensor/convolution/fusion.hpp"
#include "tensor/convolution/geometry.hpp"
#include "tensor/convolution/implicit_gemm.hpp"
#include "tensor/convolution/padding.hpp"
#include "tensor/convolution/shifted.hpp"
#include "tensor/convolution/winograd.hpp"
#include "tensor/factory.hpp"
#include "tensor/group_norm.hpp"
#include "tensor/group_norm/group_walk.hpp"
#include "tensor/kernel_path.hpp"

namespace ddpm {
namespace {

using namespace convolution_detail;

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  check(a.dtype() == b.dtype(), op, "dtypes differ: ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
}

// output = bias (+ image_bias) + the correlation of x with weight [Co, Ci, KH, KW] under
// geometry g; x unpadded [N, Ci, H, W]. Both the forward and the stride-1 input gradient
// (on the transposed geometry) run here; pad_width is the columns' padding (g.padding the rows').
template <class T>
void correlate(const Geometry& g, std::int64_t pad_width, const Tensor& x, const T* weight, const T* bias, T* output,
               WeightLifetime lifetime, const T* image_bias = nullptr) {
  if (winograd_suits(g)) return correlate_winograd<T>(g, x.data<T>(), weight, bias, output, lifetime, {}, image_bias);
  if (shifted_convolution_suits(g.out_channels, g.in_channels * g.kernel_area())) {
    correlate_shifted<T>({x.data<T>(), g.batch, g.in_channels, g.height, g.width, g.padding, pad_width},
                         {g.kernel_height, g.kernel_width, g.stride, g.dilation}, g.out_height, g.out_width,
                         g.out_channels, weight, bias, output);
  } else {
    const PaddedInput padded = padded_planes(x, g.padding, pad_width);
    if (direct_convolution_suits(g))
      convolve_directly<T>(g, padded.buffer.data<T>(), padded.height, padded.width, weight, bias, output);
    else
      implicit_gemm::forward<T>(g, padded, weight, bias, output);
  }
  if (image_bias) add_image_bias(image_bias, g.batch, g.out_channels, g.out_area(), output);
}

// The forward's bias and image bias checked against its geometry.
void check_biases(const char* op, const Geometry& g, const Tensor& input, const Tensor& weight, const Tensor& bias,
                  const Tensor& image_bias) {
  check_same_dtype(op, input, weight);
  if (bias.defined()) {
    check(bias.shape() == Shape{g.out_channels}, op, "bias must be [", g.out_channels, "], got ",
          shape_string(bias.shape()));
    check_same_dtype(op, input, bias);
  }
  if (image_bias.defined()) {
    check(image_bias.shape() == Shape{g.batch, g.out_channels}, op, "image bias must be [", g.batch, ", ",
          g.out_channels, "], got ", shape_string(image_bias.shape()));
    check_same_dtype(op, input, image_bias);
  }
}

template <class T>
const T* data_or_null(const Tensor& contiguous) {
  return contiguous.defined() ? contiguous.data<T>() : nullptr;
}

Tensor contiguous_or_undefined(const Tensor& tensor) { return tensor.defined() ? tensor.contiguous() : Tensor(); }

WeightLifetime weight_lifetime(const Convolution2dOptions& options) {
  return options.reuse_weight_transform ? WeightLifetime::Lasting : WeightLifetime::ThisCall;
}

}  // namespace

std::int64_t conv2d_output_size(std::int64_t input, std::int64_t kernel, const Convolution2dOptions& options) {
  const std::int64_t span = options.dilation * (kernel - 1) + 1;
  const std::int64_t size = (input + 2 * options.padding - span) / options.stride + 1;
  check(input + 2 * options.padding >= span && size > 0, "conv2d", "kernel of extent ", span,
        " does not fit an input of size ", input, " with padding ", options.padding);
  return size;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Convolution2dOptions& options,
              const Tensor& image_bias) {
  const Geometry g = make_geometry(input.shape(), weight.shape(), options, "conv2d");
  check_biases("conv2d", g, input, weight, bias, image_bias);
  const Tensor per_image = contiguous_or_undefined(image_bias);
  if (use_reference_kernels()) {
    Tensor output = conv2d_reference(input, weight, bias, options).contiguous();
    if (per_image.defined())
      dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
        add_image_bias(per_image.data<T>(), g.batch, g.out_channels, g.out_area(), output.data<T>());
      });
    return output;
  }
  Tensor output = Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, input.dtype());
  if (g.batch == 0 || g.out_channels == 0) return output;
  const Tensor x = input.contiguous(), w = weight.contiguous(), b = contiguous_or_undefined(bias);
  dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
    correlate<T>(g, g.padding, x, w.data<T>(), data_or_null<T>(b), output.data<T>(), weight_lifetime(options),
                 data_or_null<T>(per_image));
  });
  return output;
}

Tensor group_norm_silu_conv2d(const Tensor& input, std::int64_t groups, const Tensor& gamma, const Tensor& beta,
                              double eps, const Tensor& weight, const Tensor& bias, const Convolution2dOptions& options,
                              const Tensor& image_bias) {
  const Geometry g = make_geometry(input.shape(), weight.shape(), options, "group_norm_silu_conv2d");
  if (use_reference_kernels() || !winograd_suits(g) || g.batch == 0)
    return conv2d(group_norm(input, groups, gamma, beta, eps, true).output, weight, bias, options, image_bias);
  check_biases("group_norm_silu_conv2d", g, input, weight, bias, image_bias);
  group_norm_detail::check_inputs("group_norm_silu_conv2d", input, groups, gamma, beta);
  Tensor output = Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, input.dtype());
  const Tensor x = input.contiguous(), w = weight.contiguous(), b = contiguous_or_undefined(bias);
  const Tensor gamma_values = gamma.contiguous(), beta_values = beta.contiguous();
  const Tensor per_image = contiguous_or_undefined(image_bias);
  dispatch_floating(input.dtype(), "group_norm_silu_conv2d", [&]<class T>() {
    const InputFusion<T> activation{gamma_values.data<T>(), beta_values.data<T>(), groups, eps};
    correlate_winograd<T>(g, x.data<T>(), w.data<T>(), data_or_null<T>(b), output.data<T>(), weight_lifetime(options),
                          activation, data_or_null<T>(per_image));
  });
  return output;
}

Tensor upsample_nearest2x_conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
                                 const Convolution2dOptions& options) {
  check(input.rank() == 4, "upsample_nearest2x_conv2d", "input must be [N, C, H, W], got ", shape_string(input.shape()));
  const Shape upsampled{input.size(0), input.size(1), 2 * input.size(2), 2 * input.size(3)};
  const Geometry g = make_geometry(upsampled, weight.shape(), options, "upsample_nearest2x_conv2d");
  if (use_reference_kernels() || !winograd_suits(g) || g.batch == 0)
    return conv2d(upsample_nearest2x(input), weight, bias, options);
  check_biases("upsample_nearest2x_conv2d", g, input, weight, bias, Tensor());
  Tensor output = Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, input.dtype());
  const Tensor x = input.contiguous(), w = weight.contiguous(), b = contiguous_or_undefined(bias);
  dispatch_floating(input.dtype(), "upsample_nearest2x_conv2d", [&]<class T>() {
    InputFusion<T> upsampling;
    upsampling.upsample = true;
    correlate_winograd<T>(g, x.data<T>(), w.data<T>(), data_or_null<T>(b), output.data<T>(), weight_lifetime(options),
                          upsampling);
  });
  return output;
}

Tensor conv2d_input_gradient(const Tensor& output_gradient, const Tensor& weight, const Shape& input_shape,
                             const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input_shape, weight.shape(), options, "conv2d_input_gradient");
  check(output_gradient.shape() == Shape{g.batch, g.out_channels, g.out_height, g.out_width}, "conv2d_input_gradient",
        "output gradient has shape ", shape_string(output_gradient.shape()), ", expected ",
        shape_string({g.batch, g.out_channels, g.out_height, g.out_width}));
  check_same_dtype("conv2d_input_gradient", output_gradient, weight);
  if (use_reference_kernels()) return conv2d_input_gradient_reference(output_gradient, weight, input_shape, options);
  if (g.batch == 0 || g.in_channels == 0) return Tensor::empty(input_shape, output_gradient.dtype());
  if (g.out_channels == 0) return zeros(input_shape, output_gradient.dtype());
  const Tensor dy = output_gradient.contiguous(), w = weight.contiguous();
  Tensor input_gradient = Tensor::empty(input_shape, output_gradient.dtype());
  dispatch_floating(output_gradient.dtype(), "conv2d_input_gradient", [&]<class T>() {
    T* dx = input_gradient.data<T>();
    // Stride 1: the forward correlation of dY with the rotated, transposed kernel.
    if (g.stride == 1 && transposed_padding_height(g) >= 0 && transposed_padding_width(g) >= 0) {
      const std::vector<T> rotated = rotated_transposed_weight(w.data<T>(), g);  // [Ci, Co, KH, KW]
      return correlate<T>(transposed_geometry(g), transposed_padding_width(g), dy, rotated.data(), nullptr, dx,
                          WeightLifetime::ThisCall);
    }
    // Strided: the shifted path computes each phase of the stride as a correlation; with too
    // few channels for it, columns and col2im.
    if (g.stride > 1 &&
        shifted_convolution_suits(g.in_channels, g.out_channels * g.kernel_area() / (g.stride * g.stride))) {
      const std::int64_t pad_rows = (g.dilation * (g.kernel_height - 1) + g.stride - 1) / g.stride + 1;
      const std::int64_t pad_columns = (g.dilation * (g.kernel_width - 1) + g.stride - 1) / g.stride + 1;
      const PaddedInput padded = padded_planes(dy, pad_rows, pad_columns);
      return input_gradient_by_phases<T>(padded.planes<T>(), pad_rows, pad_columns,
                                         {g.kernel_height, g.kernel_width, g.stride, g.dilation}, g.padding, g.height,
                                         g.width, g.in_channels, w.data<T>(), dx);
    }
    implicit_gemm::input_gradient_by_columns<T>(g, dy.data<T>(), w.data<T>(), dx);
  });
  return input_gradient;
}

Tensor conv2d_weight_gradient(const Tensor& output_gradient, const Tensor& input, const Shape& weight_shape,
                              const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input.shape(), weight_shape, options, "conv2d_weight_gradient");
  check(output_gradient.shape() == Shape{g.batch, g.out_channels, g.out_height, g.out_width}, "conv2d_weight_gradient",
        "output gradient has shape ", shape_string(output_gradient.shape()), ", expected ",
        shape_string({g.batch, g.out_channels, g.out_height, g.out_width}));
  check_same_dtype("conv2d_weight_gradient", output_gradient, input);
  if (use_reference_kernels()) return conv2d_weight_gradient_reference(output_gradient, input, weight_shape, options);
  if (g.batch == 0 || g.out_channels == 0 || g.in_channels == 0) return zeros(weight_shape, input.dtype());  // empty sums
  const Tensor dy = output_gradient.contiguous();
  Tensor weight_gradient = Tensor::empty(weight_shape, input.dtype());
  dispatch_floating(input.dtype(), "conv2d_weight_gradient", [&]<class T>() {
    T* dw = weight_gradient.data<T>();
    if (winograd_suits(g)) return weight_gradient_winograd<T>(g, input.contiguous().data<T>(), dy.data<T>(), dw);
    const PaddedInput x = padded_planes(input, g.padding, g.padding);
    if (direct_convolution_suits(g))
      return weight_gradient_directly(g, dy.data<T>(), x.buffer.data<T>(), x.height, x.width, dw);
    if (shifted_convolution_suits(g.out_channels, g.batch * g.out_area()))
      return weight_gradient_shifted<T>(x.planes<T>(), {g.kernel_height, g.kernel_width, g.stride, g.dilation},
                                        g.out_height, g.out_width, g.out_channels, dy.data<T>(), dw);
    implicit_gemm::weight_gradient<T>(g, x, dy.data<T>(), dw);
  });
  return weight_gradient;
}

}  // namespace ddpm
