#include "tensor/convolution.hpp"

#include <algorithm>
#include <vector>

#include "tensor/gemm/gemm.hpp"
#include "tensor/kernel_path.hpp"

namespace ddpm {
namespace {

// Sizes of one convolution, resolved and validated once.
struct Geometry {
  std::int64_t batch, in_channels, height, width;
  std::int64_t out_channels, kernel_height, kernel_width;
  std::int64_t out_height, out_width;
  std::int64_t stride, padding, dilation;
  std::int64_t kernel_area() const { return kernel_height * kernel_width; }
  std::int64_t in_area() const { return height * width; }
  std::int64_t out_area() const { return out_height * out_width; }
};

Geometry make_geometry(const Shape& input, const Shape& weight, const Convolution2dOptions& options, const char* op) {
  check(input.size() == 4, op, "input must be [N, C, H, W], got ", shape_string(input));
  check(weight.size() == 4, op, "weight must be [Co, Ci, KH, KW], got ", shape_string(weight));
  check(weight[1] == input[1], op, "weight ", shape_string(weight), " expects ", weight[1],
        " input channels, input ", shape_string(input), " has ", input[1]);
  check(options.stride >= 1 && options.dilation >= 1 && options.padding >= 0, op,
        "stride and dilation must be >= 1 and padding >= 0, got stride ", options.stride, ", padding ",
        options.padding, ", dilation ", options.dilation);
  Geometry g{input[0], input[1], input[2], input[3], weight[0], weight[2], weight[3], 0, 0,
             options.stride, options.padding, options.dilation};
  g.out_height = conv2d_output_size(g.height, g.kernel_height, options);
  g.out_width = conv2d_output_size(g.width, g.kernel_width, options);
  return g;
}

// B of the forward GEMM for image b: element (p = (ci, kh, kw), j = (oh, ow)) is the input
// pixel under kernel tap p for output pixel j, or 0 in the padding.
template <class T>
void pack_im2col(const T* input, const Geometry& g, std::int64_t b, std::int64_t depth, std::int64_t column,
                 std::int64_t depths, std::int64_t columns, std::int64_t nr, T* out) {
  std::int64_t row_of[64], column_of[64];
  for (std::int64_t panel = 0; panel * nr < columns; ++panel) {
    const std::int64_t valid = std::min(nr, columns - panel * nr);
    for (std::int64_t c = 0; c < valid; ++c) {
      const std::int64_t j = column + panel * nr + c;
      row_of[c] = j / g.out_width * g.stride - g.padding;
      column_of[c] = j % g.out_width * g.stride - g.padding;
    }
    T* destination = out + panel * nr * depths;
    for (std::int64_t p = 0; p < depths; ++p) {
      const std::int64_t tap = depth + p;
      const std::int64_t channel = tap / g.kernel_area();
      const std::int64_t kernel_row = tap % g.kernel_area() / g.kernel_width * g.dilation;
      const std::int64_t kernel_column = tap % g.kernel_width * g.dilation;
      const T* plane = input + (b * g.in_channels + channel) * g.in_area();
      T* row = destination + p * nr;
      std::int64_t c = 0;
      for (; c < valid; ++c) {
        const std::int64_t y = row_of[c] + kernel_row, x = column_of[c] + kernel_column;
        row[c] = (y >= 0 && y < g.height && x >= 0 && x < g.width) ? plane[y * g.width + x] : T(0);
      }
      for (; c < nr; ++c) row[c] = T(0);
    }
  }
}

// B of the input-gradient GEMM for image b: element (p = (co, kh, kw), j = (y, x)) is
// dY[co, (y + pad - kh·d) / s, (x + pad - kw·d) / s] where that division is exact and in
// range, else 0.
template <class T>
void pack_transposed_im2col(const T* output_gradient, const Geometry& g, std::int64_t b, std::int64_t depth,
                            std::int64_t column, std::int64_t depths, std::int64_t columns, std::int64_t nr, T* out) {
  std::int64_t row_of[64], column_of[64];
  for (std::int64_t panel = 0; panel * nr < columns; ++panel) {
    const std::int64_t valid = std::min(nr, columns - panel * nr);
    for (std::int64_t c = 0; c < valid; ++c) {
      const std::int64_t j = column + panel * nr + c;
      row_of[c] = j / g.width + g.padding;
      column_of[c] = j % g.width + g.padding;
    }
    T* destination = out + panel * nr * depths;
    for (std::int64_t p = 0; p < depths; ++p) {
      const std::int64_t tap = depth + p;
      const std::int64_t channel = tap / g.kernel_area();
      const std::int64_t kernel_row = tap % g.kernel_area() / g.kernel_width * g.dilation;
      const std::int64_t kernel_column = tap % g.kernel_width * g.dilation;
      const T* plane = output_gradient + (b * g.out_channels + channel) * g.out_area();
      T* row = destination + p * nr;
      std::int64_t c = 0;
      for (; c < valid; ++c) {
        const std::int64_t y = row_of[c] - kernel_row, x = column_of[c] - kernel_column;
        bool inside = y >= 0 && x >= 0;
        std::int64_t oy = 0, ox = 0;
        if (inside && g.stride == 1) {
          oy = y, ox = x;
        } else if (inside) {
          inside = y % g.stride == 0 && x % g.stride == 0;
          oy = y / g.stride, ox = x / g.stride;
        }
        inside = inside && oy < g.out_height && ox < g.out_width;
        row[c] = inside ? plane[oy * g.out_width + ox] : T(0);
      }
      for (; c < nr; ++c) row[c] = T(0);
    }
  }
}

// A of the input-gradient GEMM: W'[ci, (co, kh, kw)] = W[co, ci, kh, kw].
template <class T>
void pack_transposed_weight(const T* weight, const Geometry& g, std::int64_t row, std::int64_t depth,
                            std::int64_t rows, std::int64_t depths, std::int64_t mr, T* out) {
  for (std::int64_t panel = 0; panel * mr < rows; ++panel) {
    T* destination = out + panel * mr * depths;
    const std::int64_t valid = std::min(mr, rows - panel * mr);
    for (std::int64_t p = 0; p < depths; ++p) {
      const std::int64_t tap = depth + p;
      const std::int64_t channel = tap / g.kernel_area(), offset = tap % g.kernel_area();
      const T* source = weight + channel * g.in_channels * g.kernel_area() + offset;
      for (std::int64_t r = 0; r < mr; ++r)
        destination[p * mr + r] = r < valid ? source[(row + panel * mr + r) * g.kernel_area()] : T(0);
    }
  }
}

// A of the weight-gradient GEMM: element (co, p = (n, ohw)) = dY[n, co, ohw].
template <class T>
void pack_output_gradient_rows(const T* output_gradient, const Geometry& g, std::int64_t row, std::int64_t depth,
                               std::int64_t rows, std::int64_t depths, std::int64_t mr, T* out) {
  for (std::int64_t panel = 0; panel * mr < rows; ++panel) {
    T* destination = out + panel * mr * depths;
    const std::int64_t valid = std::min(mr, rows - panel * mr);
    for (std::int64_t r = 0; r < mr; ++r) {
      const std::int64_t channel = row + panel * mr + r;
      for (std::int64_t p = 0; p < depths; ++p) {
        if (r >= valid) {
          destination[p * mr + r] = T(0);
          continue;
        }
        const std::int64_t position = depth + p;
        const std::int64_t image = position / g.out_area(), pixel = position % g.out_area();
        destination[p * mr + r] = output_gradient[(image * g.out_channels + channel) * g.out_area() + pixel];
      }
    }
  }
}

// B of the weight-gradient GEMM: element (p = (n, oh, ow), j = (ci, kh, kw)) = the input
// pixel under tap j for output pixel p of image n.
template <class T>
void pack_im2col_transposed(const T* input, const Geometry& g, std::int64_t depth, std::int64_t column,
                            std::int64_t depths, std::int64_t columns, std::int64_t nr, T* out) {
  std::int64_t plane_of[64], row_offset[64], column_offset[64];
  for (std::int64_t panel = 0; panel * nr < columns; ++panel) {
    const std::int64_t valid = std::min(nr, columns - panel * nr);
    for (std::int64_t c = 0; c < valid; ++c) {
      const std::int64_t tap = column + panel * nr + c;
      plane_of[c] = tap / g.kernel_area();
      row_offset[c] = tap % g.kernel_area() / g.kernel_width * g.dilation - g.padding;
      column_offset[c] = tap % g.kernel_width * g.dilation - g.padding;
    }
    T* destination = out + panel * nr * depths;
    for (std::int64_t p = 0; p < depths; ++p) {
      const std::int64_t position = depth + p;
      const std::int64_t image = position / g.out_area(), pixel = position % g.out_area();
      const std::int64_t base_y = pixel / g.out_width * g.stride, base_x = pixel % g.out_width * g.stride;
      const T* image_data = input + image * g.in_channels * g.in_area();
      T* row = destination + p * nr;
      std::int64_t c = 0;
      for (; c < valid; ++c) {
        const std::int64_t y = base_y + row_offset[c], x = base_x + column_offset[c];
        row[c] = (y >= 0 && y < g.height && x >= 0 && x < g.width) ? image_data[plane_of[c] * g.in_area() + y * g.width + x]
                                                                    : T(0);
      }
      for (; c < nr; ++c) row[c] = T(0);
    }
  }
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  check(a.dtype() == b.dtype(), op, "dtypes differ: ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
}

}  // namespace

std::int64_t conv2d_output_size(std::int64_t input, std::int64_t kernel, const Convolution2dOptions& options) {
  const std::int64_t span = options.dilation * (kernel - 1) + 1;
  const std::int64_t size = (input + 2 * options.padding - span) / options.stride + 1;
  check(input + 2 * options.padding >= span && size > 0, "conv2d", "kernel of extent ", span,
        " does not fit an input of size ", input, " with padding ", options.padding);
  return size;
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input.shape(), weight.shape(), options, "conv2d");
  check_same_dtype("conv2d", input, weight);
  if (bias.defined()) {
    check(bias.shape() == Shape{g.out_channels}, "conv2d", "bias must be [", g.out_channels, "], got ",
          shape_string(bias.shape()));
    check_same_dtype("conv2d", input, bias);
  }
  if (use_reference_kernels()) return conv2d_reference(input, weight, bias, options);
  const Tensor x = input.contiguous(), w = weight.contiguous();
  Tensor output = Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, input.dtype());
  if (bias.defined()) output.copy_(bias.reshape({g.out_channels, 1, 1}));  // GEMM accumulates onto it
  dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
    const T* x_data = x.data<T>();
    const T* w_data = w.data<T>();
    T* y = output.data<T>();
    GemmProblem<T> problem;
    problem.batches = g.batch, problem.m = g.out_channels, problem.n = g.out_area();
    problem.k = g.in_channels * g.kernel_area();
    problem.beta = bias.defined() ? T(1) : T(0);
    const std::int64_t depth_total = problem.k;
    problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                         std::int64_t mr, T* out) { pack_a_strided(w_data, depth_total, 1, row, depth, rows, depths, mr, out); };
    problem.pack_b = [&](std::int64_t b, std::int64_t depth, std::int64_t column, std::int64_t depths,
                         std::int64_t columns, std::int64_t nr, T* out) {
      pack_im2col(x_data, g, b, depth, column, depths, columns, nr, out);
    };
    problem.c = [&](std::int64_t b) { return y + b * g.out_channels * g.out_area(); };
    problem.c_row_stride = g.out_area();
    gemm_run(problem);
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
  const Tensor dy = output_gradient.contiguous(), w = weight.contiguous();
  Tensor input_gradient = Tensor::empty(input_shape, output_gradient.dtype());
  dispatch_floating(output_gradient.dtype(), "conv2d_input_gradient", [&]<class T>() {
    const T* dy_data = dy.data<T>();
    const T* w_data = w.data<T>();
    T* dx = input_gradient.data<T>();
    GemmProblem<T> problem;
    problem.batches = g.batch, problem.m = g.in_channels, problem.n = g.in_area();
    problem.k = g.out_channels * g.kernel_area();
    problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                         std::int64_t mr, T* out) { pack_transposed_weight(w_data, g, row, depth, rows, depths, mr, out); };
    problem.pack_b = [&](std::int64_t b, std::int64_t depth, std::int64_t column, std::int64_t depths,
                         std::int64_t columns, std::int64_t nr, T* out) {
      pack_transposed_im2col(dy_data, g, b, depth, column, depths, columns, nr, out);
    };
    problem.c = [&](std::int64_t b) { return dx + b * g.in_channels * g.in_area(); };
    problem.c_row_stride = g.in_area();
    gemm_run(problem);
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
  const Tensor dy = output_gradient.contiguous(), x = input.contiguous();
  Tensor weight_gradient = Tensor::empty(weight_shape, input.dtype());
  dispatch_floating(input.dtype(), "conv2d_weight_gradient", [&]<class T>() {
    const T* dy_data = dy.data<T>();
    const T* x_data = x.data<T>();
    T* dw = weight_gradient.data<T>();
    GemmProblem<T> problem;
    problem.schedule = GemmSchedule::SharedPanels;
    problem.m = g.out_channels, problem.n = g.in_channels * g.kernel_area(), problem.k = g.batch * g.out_area();
    problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                         std::int64_t mr, T* out) { pack_output_gradient_rows(dy_data, g, row, depth, rows, depths, mr, out); };
    problem.pack_b = [&](std::int64_t, std::int64_t depth, std::int64_t column, std::int64_t depths,
                         std::int64_t columns, std::int64_t nr, T* out) {
      pack_im2col_transposed(x_data, g, depth, column, depths, columns, nr, out);
    };
    problem.c = [&](std::int64_t) { return dw; };
    problem.c_row_stride = problem.n;
    gemm_run(problem);
  });
  return weight_gradient;
}

// ---- references: the definition, loop by loop, accumulating in double ----

Tensor conv2d_reference(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input.shape(), weight.shape(), options, "conv2d");
  Tensor output = Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, input.dtype());
  const auto x = input.to_vector<double>(), w = weight.to_vector<double>();
  const auto b = bias.defined() ? bias.to_vector<double>() : std::vector<double>(g.out_channels, 0.0);
  std::vector<double> y(static_cast<std::size_t>(output.numel()));
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t co = 0; co < g.out_channels; ++co)
      for (std::int64_t oh = 0; oh < g.out_height; ++oh)
        for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
          double total = b[co];
          for (std::int64_t ci = 0; ci < g.in_channels; ++ci)
            for (std::int64_t kh = 0; kh < g.kernel_height; ++kh)
              for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
                const std::int64_t ih = oh * g.stride - g.padding + kh * g.dilation;
                const std::int64_t iw = ow * g.stride - g.padding + kw * g.dilation;
                if (ih < 0 || ih >= g.height || iw < 0 || iw >= g.width) continue;
                total += x[((n * g.in_channels + ci) * g.height + ih) * g.width + iw] *
                         w[((co * g.in_channels + ci) * g.kernel_height + kh) * g.kernel_width + kw];
              }
          y[((n * g.out_channels + co) * g.out_height + oh) * g.out_width + ow] = total;
        }
  output.copy_(Tensor::from_vector(y, output.shape()));
  return output;
}

Tensor conv2d_input_gradient_reference(const Tensor& output_gradient, const Tensor& weight, const Shape& input_shape,
                                       const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input_shape, weight.shape(), options, "conv2d_input_gradient");
  const auto dy = output_gradient.to_vector<double>(), w = weight.to_vector<double>();
  std::vector<double> dx(static_cast<std::size_t>(shape_numel(input_shape)), 0.0);
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
                dx[((n * g.in_channels + ci) * g.height + ih) * g.width + iw] +=
                    dy[((n * g.out_channels + co) * g.out_height + oh) * g.out_width + ow] *
                    w[((co * g.in_channels + ci) * g.kernel_height + kh) * g.kernel_width + kw];
              }
  return Tensor::from_vector(dx, input_shape).to(output_gradient.dtype());
}

Tensor conv2d_weight_gradient_reference(const Tensor& output_gradient, const Tensor& input, const Shape& weight_shape,
                                        const Convolution2dOptions& options) {
  const Geometry g = make_geometry(input.shape(), weight_shape, options, "conv2d_weight_gradient");
  const auto dy = output_gradient.to_vector<double>(), x = input.to_vector<double>();
  std::vector<double> dw(static_cast<std::size_t>(shape_numel(weight_shape)), 0.0);
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
                dw[((co * g.in_channels + ci) * g.kernel_height + kh) * g.kernel_width + kw] +=
                    dy[((n * g.out_channels + co) * g.out_height + oh) * g.out_width + ow] *
                    x[((n * g.in_channels + ci) * g.height + ih) * g.width + iw];
              }
  return Tensor::from_vector(dw, weight_shape).to(input.dtype());
}

}  // namespace ddpm
