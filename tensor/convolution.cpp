#include "tensor/convolution.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/factory.hpp"
#include "tensor/gemm/gemm.hpp"
#include "tensor/kernel_path.hpp"
#include "tensor/convolution_geometry.hpp"
#include "tensor/direct_convolution.hpp"
#include "tensor/parallel.hpp"
#include "tensor/shifted_convolution.hpp"
#include "tensor/winograd_convolution.hpp"

namespace ddpm {
namespace {

using convolution_detail::Geometry;
using convolution_detail::make_geometry;

// A run of consecutive pixel positions that share one image and one row.
struct RowSegment {
  std::int64_t image, row, first_column, start, length;  // start: offset in the packed run
};

// Cuts the positions [first, first + count) of images of `rows` x `columns` pixels into
// row segments.
void row_segments(std::int64_t first, std::int64_t count, std::int64_t rows, std::int64_t columns,
                  std::vector<RowSegment>& segments) {
  segments.clear();
  const std::int64_t area = rows * columns;
  for (std::int64_t done = 0; done < count;) {
    const std::int64_t position = first + done;
    const std::int64_t pixel = position % area;
    const std::int64_t column = pixel % columns;
    const std::int64_t length = std::min(columns - column, count - done);
    segments.push_back({position / area, pixel / columns, column, done, length});
    done += length;
  }
}

// [N, C, H, W] with `pad_height` zero rows above and below every plane and `pad_width`
// zero columns left and right. With the padding in memory, every tap of every output
// pixel is a plain read: the packers below copy without bounds checks, and the shifted
// convolutions read the planes in place.
struct PaddedInput {
  Tensor buffer;  // [N, C, H + 2 pad_height, W + 2 pad_width]
  std::int64_t height, width;
  template <class T>
  convolution_detail::PaddedPlanes<T> planes() const {
    return {buffer.data<T>(), buffer.size(0), buffer.size(1), height, width};
  }
};

PaddedInput padded_planes(const Tensor& input, std::int64_t pad_height, std::int64_t pad_width) {
  const Tensor x = input.contiguous();
  if (pad_height == 0 && pad_width == 0) return {x, x.size(2), x.size(3)};  // no copy (1x1 kernels)
  const std::int64_t planes = x.size(0) * x.size(1), height = x.size(2), width = x.size(3);
  const std::int64_t padded_height = height + 2 * pad_height, padded_width = width + 2 * pad_width;
  PaddedInput padded{Tensor::empty({x.size(0), x.size(1), padded_height, padded_width}, x.dtype()), padded_height,
                     padded_width};
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    const T* in = x.data<T>();
    T* out = padded.buffer.data<T>();
    parallel_for(planes, 8, [&](std::int64_t begin, std::int64_t end) {
      convolution_detail::copy_padded(in + begin * height * width, end - begin, height, width, pad_height, pad_width,
                                      out + begin * padded_height * padded_width);
    });
  });
  return padded;
}

// Reading taps from padded planes: element (tap = (channel, kh, kw), pixel = (oy, ox)) is
// plane[channel][oy·stride + kh·dilation][ox·stride + kw·dilation].
template <class T>
struct ShiftedPlanes {
  const T* data;
  std::int64_t channels, height, width;  // of the padded planes
  std::int64_t out_height, out_width;    // the pixel grid
  std::int64_t stride, dilation, kernel_height, kernel_width;

  // Pointer to the value for `tap` at pixel (oy, ox) of image `image`; along ox the next
  // value is `stride` further.
  const T* at(std::int64_t image, std::int64_t tap, std::int64_t oy, std::int64_t ox) const {
    const std::int64_t area = kernel_height * kernel_width;
    const std::int64_t channel = tap / area;
    const std::int64_t kh = tap % area / kernel_width, kw = tap % kernel_width;
    return data + ((image * channels + channel) * height + oy * stride + kh * dilation) * width + ox * stride +
           kw * dilation;
  }
};

template <class T>
void copy_strided(const T* __restrict source, std::int64_t count, std::int64_t step, T* __restrict destination) {
  if (step == 1) for (std::int64_t c = 0; c < count; ++c) destination[c] = source[c];
  else for (std::int64_t c = 0; c < count; ++c) destination[c] = source[c * step];
}

// Packs one depth row after another: for each depth p, `fill_line(p, line)` writes the
// `columns` values of B's row p into a line, which is then cut into the nr-wide panels.
// Working a whole row at a time amortises the index arithmetic over all the columns.
template <class T, std::int64_t NR, class FillLine>
void pack_rows_into_panels_fixed(std::int64_t depths, std::int64_t panels, T* line, T* out, FillLine& fill_line) {
  for (std::int64_t p = 0; p < depths; ++p) {
    fill_line(p, line);
    for (std::int64_t panel = 0; panel < panels; ++panel) {
      const T* source = line + panel * NR;
      T* destination = out + panel * NR * depths + p * NR;
      std::memcpy(destination, source, NR * sizeof(T));  // a constant size: a few vector moves
    }
  }
}

template <class T, class FillLine>
void pack_rows_into_panels(std::int64_t depths, std::int64_t columns, std::int64_t nr, T* out, FillLine&& fill_line) {
  thread_local std::vector<T> line;
  const std::int64_t panels = (columns + nr - 1) / nr;
  line.assign(static_cast<std::size_t>(panels * nr), T(0));
  switch (nr) {
    case 8: return pack_rows_into_panels_fixed<T, 8>(depths, panels, line.data(), out, fill_line);
    case 16: return pack_rows_into_panels_fixed<T, 16>(depths, panels, line.data(), out, fill_line);
    case 32: return pack_rows_into_panels_fixed<T, 32>(depths, panels, line.data(), out, fill_line);
  }
  for (std::int64_t p = 0; p < depths; ++p) {
    fill_line(p, line.data());
    for (std::int64_t panel = 0; panel < panels; ++panel) {
      const T* source = line.data() + panel * nr;
      T* destination = out + panel * nr * depths + p * nr;
      for (std::int64_t c = 0; c < nr; ++c) destination[c] = source[c];
    }
  }
}

// B of the forward GEMM (and of the stride-1 input gradient) for image b: row p is tap p,
// column j pixel j of the output grid.
template <class T>
void pack_taps(const ShiftedPlanes<T>& planes, std::int64_t b, std::int64_t depth, std::int64_t column,
               std::int64_t depths, std::int64_t columns, std::int64_t nr, T* out) {
  thread_local std::vector<RowSegment> segments;
  row_segments(column, columns, planes.out_height, planes.out_width, segments);
  pack_rows_into_panels<T>(depths, columns, nr, out, [&](std::int64_t p, T* line) {
    for (const RowSegment& segment : segments)
      copy_strided(planes.at(b, depth + p, segment.row, segment.first_column), segment.length, planes.stride,
                   line + segment.start);
  });
}

// A of the weight-gradient GEMM dWᵀ = col · dYᵀ: row r is tap r, depth p = (n, oh, ow)
// the output pixel: read along output rows, so stride-1 reads are copies.
template <class T>
void pack_taps_by_row(const ShiftedPlanes<T>& planes, std::int64_t row, std::int64_t depth, std::int64_t rows,
                      std::int64_t depths, std::int64_t mr, T* out) {
  thread_local std::vector<RowSegment> segments;
  row_segments(depth, depths, planes.out_height, planes.out_width, segments);
  pack_a_by_rows<T>(rows, depths, mr, out, [&](std::int64_t i, T* line) {
    for (const RowSegment& segment : segments)
      copy_strided(planes.at(segment.image, row + i, segment.row, segment.first_column), segment.length, planes.stride,
                   line + segment.start);
  });
}

// B of the weight-gradient GEMM: element (p = (n, ohw), co) = dY[n, co, ohw].
template <class T>
void pack_output_gradient_columns(const T* output_gradient, const Geometry& g, std::int64_t depth,
                                  std::int64_t column, std::int64_t depths, std::int64_t columns, std::int64_t nr,
                                  T* out) {
  for (std::int64_t panel = 0; panel * nr < columns; ++panel) {
    T* destination = out + panel * nr * depths;
    const std::int64_t valid = std::min(nr, columns - panel * nr);
    for (std::int64_t c = 0; c < nr; ++c) {
      if (c >= valid) {
        for (std::int64_t p = 0; p < depths; ++p) destination[p * nr + c] = T(0);
        continue;
      }
      const std::int64_t channel = column + panel * nr + c;
      for (std::int64_t p = 0; p < depths;) {
        const std::int64_t position = depth + p;
        const std::int64_t image = position / g.out_area(), pixel = position % g.out_area();
        const std::int64_t run = std::min(g.out_area() - pixel, depths - p);
        const T* source = output_gradient + (image * g.out_channels + channel) * g.out_area() + pixel;
        for (std::int64_t i = 0; i < run; ++i) destination[(p + i) * nr + c] = source[i];
        p += run;
      }
    }
  }
}

// The implicit GEMM both the forward and the stride-1 input gradient are: per image b,
// C_b[rows, pixels] = beta C_b + A[rows, taps] · taps(planes, b), with A the same for every
// image (weights, packed once) and the taps read from the padded planes while packing.
template <class T, class PackA>
void convolve_planes(const ShiftedPlanes<T>& planes, std::int64_t batches, std::int64_t rows, std::int64_t taps,
                     PackA&& pack_a, T* output, T beta) {
  const std::int64_t pixels = planes.out_height * planes.out_width;
  GemmProblem<T> problem;
  problem.batches = batches, problem.m = rows, problem.n = pixels, problem.k = taps, problem.beta = beta;
  problem.a_same_for_all_batches = true;
  problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t count, std::int64_t depths,
                       std::int64_t mr, T* out) { pack_a(row, depth, count, depths, mr, out); };
  problem.pack_b = [&](std::int64_t b, std::int64_t depth, std::int64_t column, std::int64_t depths,
                       std::int64_t columns, std::int64_t nr, T* out) {
    pack_taps(planes, b, depth, column, depths, columns, nr, out);
  };
  problem.c = [&](std::int64_t b) { return output + b * rows * pixels; };
  problem.c_row_stride = pixels;
  gemm_run(problem);
}

// The kernels of the stride-1 input gradient's transposed correlation: tap (co, kh, kw)
// meets weight [co, ci, KH-1-kh, KW-1-kw]. weight: [Co, Ci, KH, KW]; result: [Ci, Co, KH, KW].
template <class T>
std::vector<T> rotated_transposed_weight(const T* weight, const Geometry& g) {
  const std::int64_t area = g.kernel_area(), taps = g.out_channels * area;
  std::vector<T> rotated(static_cast<std::size_t>(g.in_channels * taps));
  for (std::int64_t ci = 0; ci < g.in_channels; ++ci)
    for (std::int64_t co = 0; co < g.out_channels; ++co)
      for (std::int64_t k = 0; k < area; ++k)
        rotated[static_cast<std::size_t>(ci * taps + co * area + k)] = weight[(co * g.in_channels + ci) * area + area - 1 - k];
  return rotated;
}

bool winograd_suits(const Geometry& g, std::int64_t inputs, std::int64_t outputs) {
  return convolution_detail::winograd_suits(g.kernel_height, g.kernel_width, g.stride, g.dilation, inputs, outputs);
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
  if (g.batch == 0 || g.out_channels == 0) return Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, input.dtype());
  const Tensor w = weight.contiguous();
  const Tensor bias_values = bias.defined() ? bias.contiguous() : Tensor();
  Tensor output = Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, input.dtype());
  if (winograd_suits(g, g.in_channels, g.out_channels)) {
    const Tensor x = input.contiguous();
    dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
      convolution_detail::correlate_winograd<T>(x.data<T>(), g.batch, g.in_channels, g.height, g.width, g.padding,
                                                g.out_channels, w.data<T>(),
                                                bias.defined() ? bias_values.data<T>() : nullptr, output.data<T>());
    });
    return output;
  }
  const std::int64_t taps = g.in_channels * g.kernel_area();
  if (convolution_detail::shifted_convolution_suits(g.out_channels, taps)) {
    const Tensor x = input.contiguous();
    dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
      convolution_detail::correlate_shifted<T>(
          {x.data<T>(), g.batch, g.in_channels, g.height, g.width, g.padding, g.padding},
          {g.kernel_height, g.kernel_width, g.stride, g.dilation}, g.out_height, g.out_width, g.out_channels,
          w.data<T>(), bias.defined() ? bias_values.data<T>() : nullptr, output.data<T>());
    });
    return output;
  }
  const PaddedInput x = padded_planes(input, g.padding, g.padding);
  if (convolution_detail::direct_convolution_suits(g)) {
    dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
      convolution_detail::convolve_directly<T>(g, x.buffer.data<T>(), x.height, x.width, w.data<T>(),
                                               bias.defined() ? bias_values.data<T>() : nullptr, output.data<T>());
    });
    return output;
  }
  dispatch_floating(input.dtype(), "conv2d", [&]<class T>() {
    const T* w_data = w.data<T>();
    T* y = output.data<T>();
    if (bias.defined()) {  // the GEMM accumulates onto the bias (beta = 1)
      const T* bias_data = bias_values.data<T>();
      parallel_for(g.batch * g.out_channels, 16, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t row = begin; row < end; ++row)
          std::fill(y + row * g.out_area(), y + (row + 1) * g.out_area(), bias_data[row % g.out_channels]);
      });
    }
    const ShiftedPlanes<T> planes{x.buffer.data<T>(), g.in_channels, x.height, x.width, g.out_height, g.out_width,
                                  g.stride, g.dilation, g.kernel_height, g.kernel_width};
    convolve_planes<T>(planes, g.batch, g.out_channels, taps,
                       [&](std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths, std::int64_t mr,
                           T* out) { pack_a_strided(w_data, taps, 1, row, depth, rows, depths, mr, out); },
                       y, bias.defined() ? T(1) : T(0));  // accumulating onto the bias
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
    const T* dy_data = dy.data<T>();
    const T* w_data = w.data<T>();
    T* dx = input_gradient.data<T>();
    // Stride 1: dX is the forward correlation of dY, padded by the kernel's extent minus the
    // forward padding, with the kernel rotated by 180 degrees and transposed; every path
    // below computes it as that correlation (`transposed` is its geometry).
    const std::int64_t pad_h = g.dilation * (g.kernel_height - 1) - g.padding;
    const std::int64_t pad_w = g.dilation * (g.kernel_width - 1) - g.padding;
    if (g.stride == 1 && pad_h >= 0 && pad_w >= 0) {
      const std::vector<T> rotated = rotated_transposed_weight(w_data, g);  // [Ci, Co·KH·KW]
      const Geometry transposed{g.batch, g.out_channels, g.out_height, g.out_width, g.in_channels, g.kernel_height,
                                g.kernel_width, g.height, g.width, 1, pad_h, g.dilation};
      const std::int64_t taps = transposed.in_channels * transposed.kernel_area();
      if (winograd_suits(transposed, transposed.in_channels, transposed.out_channels)) {
        convolution_detail::correlate_winograd<T>(dy_data, g.batch, g.out_channels, g.out_height, g.out_width, pad_h,
                                                  g.in_channels, rotated.data(), nullptr, dx);
        return;
      }
      if (convolution_detail::shifted_convolution_suits(transposed.out_channels, taps)) {
        convolution_detail::correlate_shifted<T>({dy_data, g.batch, g.out_channels, g.out_height, g.out_width, pad_h, pad_w},
                                                 {g.kernel_height, g.kernel_width, 1, g.dilation}, g.height, g.width,
                                                 g.in_channels, rotated.data(), nullptr, dx);
        return;
      }
      const PaddedInput padded = padded_planes(dy, pad_h, pad_w);
      if (convolution_detail::direct_convolution_suits(transposed)) {  // few input channels (conv_in)
        convolution_detail::convolve_directly<T>(transposed, padded.buffer.data<T>(), padded.height, padded.width,
                                                 rotated.data(), nullptr, dx);
        return;
      }
      const ShiftedPlanes<T> planes{padded.buffer.data<T>(), g.out_channels, padded.height, padded.width, g.height, g.width,
                                    1, g.dilation, g.kernel_height, g.kernel_width};
      convolve_planes<T>(planes, g.batch, g.in_channels, taps,
                         [&](std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths, std::int64_t mr,
                             T* out) { pack_a_strided(rotated.data(), taps, 1, row, depth, rows, depths, mr, out); },
                         dx, T(0));
      return;
    }
    if (g.stride > 1 && convolution_detail::shifted_convolution_suits(
                            g.in_channels, g.out_channels * g.kernel_area() / (g.stride * g.stride))) {
      const std::int64_t pad_rows = (g.dilation * (g.kernel_height - 1) + g.stride - 1) / g.stride + 1;
      const std::int64_t pad_columns = (g.dilation * (g.kernel_width - 1) + g.stride - 1) / g.stride + 1;
      const PaddedInput padded = padded_planes(dy, pad_rows, pad_columns);
      convolution_detail::input_gradient_by_phases<T>(
          padded.planes<T>(), pad_rows, pad_columns, {g.kernel_height, g.kernel_width, g.stride, g.dilation},
          g.padding, g.height, g.width, g.in_channels, w_data, dx);
      return;
    }
    // Otherwise (strided): most taps of the transposed form would multiply zeros, so compute the
    // columns dcol_n[Ci·K, OHW] = Wᵀ · dY_n for a few images at a time and scatter them
    // back (col2im), each input pixel summing its taps in a fixed order.
    const std::int64_t taps = g.in_channels * g.kernel_area();
    const std::int64_t per_image = taps * g.out_area();
    const std::int64_t group = std::clamp<std::int64_t>((std::int64_t{2} << 20) / per_image, 1, g.batch);
    std::vector<T> columns(static_cast<std::size_t>(group * per_image));
    for (std::int64_t first = 0; first < g.batch; first += group) {
      const std::int64_t count = std::min(group, g.batch - first);
      GemmProblem<T> problem;
      problem.batches = count, problem.m = taps, problem.n = g.out_area(), problem.k = g.out_channels;
      problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                           std::int64_t mr, T* out) { pack_a_strided(w_data, 1, taps, row, depth, rows, depths, mr, out); };
      problem.pack_b = [&](std::int64_t b, std::int64_t depth, std::int64_t column, std::int64_t depths,
                           std::int64_t column_count, std::int64_t nr, T* out) {
        pack_b_strided(dy_data + (first + b) * g.out_channels * g.out_area(), g.out_area(), 1, depth, column, depths,
                       column_count, nr, out);
      };
      problem.c = [&](std::int64_t b) { return columns.data() + b * per_image; };
      problem.c_row_stride = g.out_area();
      gemm_run(problem);
      parallel_for(count * g.in_channels, 1, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t task = begin; task < end; ++task) {
          const std::int64_t image = task / g.in_channels, channel = task % g.in_channels;
          T* plane = dx + ((first + image) * g.in_channels + channel) * g.in_area();
          std::fill(plane, plane + g.in_area(), T(0));
          for (std::int64_t kh = 0; kh < g.kernel_height; ++kh)
            for (std::int64_t kw = 0; kw < g.kernel_width; ++kw) {
              const T* source = columns.data() + image * per_image +
                                ((channel * g.kernel_height + kh) * g.kernel_width + kw) * g.out_area();
              for (std::int64_t oh = 0; oh < g.out_height; ++oh) {
                const std::int64_t y = oh * g.stride - g.padding + kh * g.dilation;
                if (y < 0 || y >= g.height) continue;
                for (std::int64_t ow = 0; ow < g.out_width; ++ow) {
                  const std::int64_t x = ow * g.stride - g.padding + kw * g.dilation;
                  if (x >= 0 && x < g.width) plane[y * g.width + x] += source[oh * g.out_width + ow];
                }
              }
            }
        }
      });
    }
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
  if (winograd_suits(g, g.in_channels, g.out_channels)) {
    const Tensor x = input.contiguous();
    dispatch_floating(input.dtype(), "conv2d_weight_gradient", [&]<class T>() {
      convolution_detail::weight_gradient_winograd<T>(x.data<T>(), g.batch, g.in_channels, g.height, g.width,
                                                      g.padding, g.out_channels, dy.data<T>(),
                                                      weight_gradient.data<T>());
    });
    return weight_gradient;
  }
  const PaddedInput x = padded_planes(input, g.padding, g.padding);
  if (!convolution_detail::direct_convolution_suits(g) &&
      convolution_detail::shifted_convolution_suits(g.out_channels, g.batch * g.out_area())) {
    dispatch_floating(input.dtype(), "conv2d_weight_gradient", [&]<class T>() {
      convolution_detail::weight_gradient_shifted<T>(x.planes<T>(), {g.kernel_height, g.kernel_width, g.stride, g.dilation},
                                                     g.out_height, g.out_width, g.out_channels, dy.data<T>(),
                                                     weight_gradient.data<T>());
    });
    return weight_gradient;
  }
  dispatch_floating(input.dtype(), "conv2d_weight_gradient", [&]<class T>() {
    const T* dy_data = dy.data<T>();
    const T* x_data = x.buffer.data<T>();
    if (convolution_detail::direct_convolution_suits(g)) {
      convolution_detail::weight_gradient_directly(g, dy_data, x_data, x.height, x.width, weight_gradient.data<T>());
      return;
    }
    const std::int64_t taps = g.in_channels * g.kernel_area();
    // dWᵀ[Ci·K, Co] = col[Ci·K, N·OHW] · dYᵀ[N·OHW, Co]: the long depth runs along output
    // rows, so the im2col side is packed by copying rows; tasks split the taps, each
    // running the whole depth in order.
    std::vector<T> transposed(static_cast<std::size_t>(taps * g.out_channels));
    const ShiftedPlanes<T> planes{x_data, g.in_channels, x.height, x.width, g.out_height, g.out_width,
                                  g.stride, g.dilation, g.kernel_height, g.kernel_width};
    GemmProblem<T> problem;
    problem.schedule = GemmSchedule::IndependentTasks;
    problem.m = taps, problem.n = g.out_channels, problem.k = g.batch * g.out_area();
    problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                         std::int64_t mr, T* out) { pack_taps_by_row(planes, row, depth, rows, depths, mr, out); };
    problem.pack_b = [&](std::int64_t, std::int64_t depth, std::int64_t column, std::int64_t depths,
                         std::int64_t columns, std::int64_t nr, T* out) {
      pack_output_gradient_columns(dy_data, g, depth, column, depths, columns, nr, out);
    };
    problem.c = [&](std::int64_t) { return transposed.data(); };
    problem.c_row_stride = g.out_channels;
    gemm_run(problem);
    T* dw = weight_gradient.data<T>();
    for (std::int64_t tap = 0; tap < taps; ++tap)
      for (std::int64_t channel = 0; channel < g.out_channels; ++channel)
        dw[channel * taps + tap] = transposed[tap * g.out_channels + channel];
  });
  return weight_gradient;
}

}  // namespace ddpm
