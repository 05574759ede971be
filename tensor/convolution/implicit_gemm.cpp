#include "tensor/convolution/implicit_gemm.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "tensor/gemm/gemm.hpp"
#include "tensor/parallel.hpp"

namespace ddpm::convolution_detail::implicit_gemm {
namespace {

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

}  // namespace

template <class T>
void forward(const Geometry& g, const PaddedInput& x, const T* weight, const T* bias, T* output) {
  if (bias) {  // the GEMM accumulates onto the bias (beta = 1)
    parallel_for(g.batch * g.out_channels, 16, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t row = begin; row < end; ++row)
        std::fill(output + row * g.out_area(), output + (row + 1) * g.out_area(), bias[row % g.out_channels]);
    });
  }
  const std::int64_t taps = g.in_channels * g.kernel_area();
  const ShiftedPlanes<T> planes{x.buffer.data<T>(), g.in_channels, x.height, x.width, g.out_height, g.out_width,
                                g.stride, g.dilation, g.kernel_height, g.kernel_width};
  convolve_planes<T>(planes, g.batch, g.out_channels, taps,
                     [&](std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths, std::int64_t mr,
                         T* out) { pack_a_strided(weight, taps, 1, row, depth, rows, depths, mr, out); },
                     output, bias ? T(1) : T(0));
}

template <class T>
void input_gradient_by_columns(const Geometry& g, const T* output_gradient, const T* weight, T* input_gradient) {
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
                         std::int64_t mr, T* out) { pack_a_strided(weight, 1, taps, row, depth, rows, depths, mr, out); };
    problem.pack_b = [&](std::int64_t b, std::int64_t depth, std::int64_t column, std::int64_t depths,
                         std::int64_t column_count, std::int64_t nr, T* out) {
      pack_b_strided(output_gradient + (first + b) * g.out_channels * g.out_area(), g.out_area(), 1, depth, column, depths,
                     column_count, nr, out);
    };
    problem.c = [&](std::int64_t b) { return columns.data() + b * per_image; };
    problem.c_row_stride = g.out_area();
    gemm_run(problem);
    parallel_for(count * g.in_channels, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t task = begin; task < end; ++task) {
        const std::int64_t image = task / g.in_channels, channel = task % g.in_channels;
        T* plane = input_gradient + ((first + image) * g.in_channels + channel) * g.in_area();
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
}

template <class T>
void weight_gradient(const Geometry& g, const PaddedInput& x, const T* output_gradient, T* weight_gradient) {
  const std::int64_t taps = g.in_channels * g.kernel_area();
  // dWᵀ[Ci·K, Co] = col[Ci·K, N·OHW] · dYᵀ[N·OHW, Co]: the long depth runs along output
  // rows, so the im2col side is packed by copying rows; tasks split the taps, each
  // running the whole depth in order.
  std::vector<T> transposed(static_cast<std::size_t>(taps * g.out_channels));
  const ShiftedPlanes<T> planes{x.buffer.data<T>(), g.in_channels, x.height, x.width, g.out_height, g.out_width,
                                g.stride, g.dilation, g.kernel_height, g.kernel_width};
  GemmProblem<T> problem;
  problem.schedule = GemmSchedule::IndependentTasks;
  problem.m = taps, problem.n = g.out_channels, problem.k = g.batch * g.out_area();
  problem.pack_a = [&](std::int64_t, std::int64_t row, std::int64_t depth, std::int64_t rows, std::int64_t depths,
                       std::int64_t mr, T* out) { pack_taps_by_row(planes, row, depth, rows, depths, mr, out); };
  problem.pack_b = [&](std::int64_t, std::int64_t depth, std::int64_t column, std::int64_t depths,
                       std::int64_t columns, std::int64_t nr, T* out) {
    pack_output_gradient_columns(output_gradient, g, depth, column, depths, columns, nr, out);
  };
  problem.c = [&](std::int64_t) { return transposed.data(); };
  problem.c_row_stride = g.out_channels;
  gemm_run(problem);
  for (std::int64_t tap = 0; tap < taps; ++tap)
    for (std::int64_t channel = 0; channel < g.out_channels; ++channel)
      weight_gradient[channel * taps + tap] = transposed[tap * g.out_channels + channel];
}

#define DDPM_INSTANTIATE_IMPLICIT_GEMM(T)                                                                   \
  template void forward<T>(const Geometry&, const PaddedInput&, const T*, const T*, T*);                    \
  template void input_gradient_by_columns<T>(const Geometry&, const T*, const T*, T*);                      \
  template void weight_gradient<T>(const Geometry&, const PaddedInput&, const T*, T*);
DDPM_INSTANTIATE_IMPLICIT_GEMM(float)
DDPM_INSTANTIATE_IMPLICIT_GEMM(double)
#undef DDPM_INSTANTIATE_IMPLICIT_GEMM

}  // namespace ddpm::convolution_detail::implicit_gemm
