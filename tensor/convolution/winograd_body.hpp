#pragma once
// The Winograd correlations and weight gradients of winograd.hpp, generic over the
// algorithm (winograd_algorithms.hpp: F(4x4, 3x3) or F(2x2, 3x3)) and over the vector type
// that runs the transforms. The GEMM microkernel is chosen at run time and packs its B
// operand in panels of its own width (kernel.nr), while the transforms' vectors may be of
// another width: the compiler's (xsimd::batch<T>) in the library, any width in the tests,
// which pair a wide vector with a narrow panel and the reverse on whatever CPU runs them.
// The layout is rounded to a common multiple of both widths (WinogradLayout), so neither
// ever reads or writes past the other's rows.
//
// Included by winograd.cpp and by the tests, each compiled with the same flags.
#include <algorithm>
#include <numeric>
#include <vector>

#include "tensor/convolution/fusion.hpp"
#include "tensor/convolution/winograd_algorithms.hpp"
#include "tensor/error.hpp"
#include "tensor/gemm/blocking.hpp"
#include "tensor/gemm/microkernel.hpp"
#include "tensor/parallel.hpp"

namespace ddpm::convolution_detail::winograd {

using gemm_detail::AlignedBuffer;
using gemm_detail::Microkernel;
using gemm_detail::round_up;
using gemm_detail::scratch;

constexpr std::int64_t minimum_channels = 16;
constexpr int max_rows = gemm_detail::max_microkernel_rows;

// The points of a transformed tile: one GEMM each.
template <class Algorithm>
constexpr std::int64_t points = std::int64_t{Algorithm::input_tile} * Algorithm::input_tile;

// Scratch slots (tensor/gemm/blocking.hpp): the images of a task in channels-last order,
// then a chunk's transformed tiles and its GEMM operand or results.
constexpr int images_slot = 2, transformed_slot = 3, products_slot = 4, output_gradient_slot = 5;

// u = G g Gᵀ for one 3 x 3 kernel g (row-major), in double: the weights are transformed
// once and kept (winograd.cpp), so their transform may as well round once, at the end.
template <class Algorithm, class T>
void transform_kernel(const T* g, T* u) {
  constexpr int alpha = Algorithm::input_tile;
  double transformed[alpha][alpha];
  transform_both_ways<3>([&](int i, int j) { return double(g[i * 3 + j]); }, transformed,
                         [](const auto& in, auto& out) { Algorithm::kernel(in, out); });
  for (int i = 0; i < alpha * alpha; ++i) u[i] = static_cast<T>(transformed[i / alpha][i % alpha]);
}

// dg = Gᵀ du G, the gradient of a 3 x 3 kernel from the gradient of its transformed
// α x α form, in double like the kernel transform.
template <class Algorithm, class T>
void transform_kernel_gradient(const T* du, T* dg) {
  constexpr int alpha = Algorithm::input_tile;
  double transformed[3][3];
  transform_both_ways<alpha>([&](int i, int j) { return double(du[i * alpha + j]); }, transformed,
                             [](const auto& in, auto& out) { Algorithm::kernel_adjoint(in, out); });
  for (int i = 0; i < 9; ++i) dg[i] = static_cast<T>(transformed[i / 3][i % 3]);
}

// The m x m output tiles of a correlation, numbered image by image, row by row.
struct TileGrid {
  std::int64_t tile, out_height, out_width, rows, columns;
  TileGrid(std::int64_t output_tile, std::int64_t height, std::int64_t width)
      : tile(output_tile),
        out_height(height),
        out_width(width),
        rows((height + tile - 1) / tile),
        columns((width + tile - 1) / tile) {}
  std::int64_t per_image() const { return rows * columns; }
  // Rows and columns of a channels-last image holding every tile's (m + 2) x (m + 2) input window.
  std::int64_t window_rows() const { return tile * rows + 2; }
  std::int64_t window_columns() const { return tile * columns + 2; }
};

// What the forward and the weight gradient share: the microkernel, the tile grid, and the
// strides of the channels-last images and of the GEMM columns. The channel stride is a
// whole number of vectors (the input transform loads whole vectors of channels); the
// output stride is a whole number of vectors and of panels (the output transform loads
// vectors of GEMM results, the gradient's transform stores vectors into panels).
template <class Vector, class Algorithm>
struct WinogradLayout {
  using T = typename Vector::value_type;
  static constexpr std::int64_t lanes = Vector::size;
  const Microkernel<T>& kernel;
  TileGrid grid;
  std::int64_t channel_stride, output_stride, panels, image_values;
  WinogradLayout(const Microkernel<T>& kernel_in_use, std::int64_t channels, std::int64_t height, std::int64_t width,
                 std::int64_t padding, std::int64_t outputs)
      : kernel(kernel_in_use),
        grid(Algorithm::output_tile, height + 2 * padding - 2, width + 2 * padding - 2),
        channel_stride(round_up(channels, lanes)),
        output_stride(round_up(outputs, std::lcm(lanes, kernel.nr))),
        panels(output_stride / kernel.nr),
        image_values(grid.window_rows() * grid.window_columns() * channel_stride) {
    // store_into_panels cuts a vector at panel boundaries only when one width divides the
    // other (true of every power-of-two pair): say so if a kernel ever breaks that.
    check(kernel.nr % lanes == 0 || lanes % kernel.nr == 0, "Winograd convolution", "vectors of ", lanes,
          " values cannot be stored into panels of ", kernel.nr, " (kernel ", kernel.name, ")");
  }
};

// `images` NCHW planes into channels-last order, [images, rows, columns, channel_stride],
// with `padding` zero rows and columns before the image, zeros after it up to rows x
// columns, and zeros past the last channel. In this layout a tile's value at (i, j) for a
// vector of channels is one load, and the transpose is paid once per value, not once per
// tile (each input value lies in four tiles). Done per task, into its scratch: in cache.
// With `upsampled`, the input planes are [height/2, width/2] and pixel (y, x) of the image
// copied is their pixel (y/2, x/2): nearest-neighbour upsampling on the way, the larger
// image never written out.
template <class T>
void copy_to_channels_last(const T* input, std::int64_t images, std::int64_t channels, std::int64_t height,
                           std::int64_t width, std::int64_t padding, std::int64_t rows, std::int64_t columns,
                           std::int64_t channel_stride, T* out, bool upsampled = false) {
  const std::int64_t row_values = columns * channel_stride;
  const std::int64_t source_height = upsampled ? height / 2 : height, source_width = upsampled ? width / 2 : width;
  const std::int64_t area = source_height * source_width;
  const std::int64_t first = std::min(padding, columns), last = std::min(padding + width, columns);
  const std::int64_t first_row = std::min(padding, rows), last_row = std::min(padding + height, rows);
  for (std::int64_t image = 0; image < images; ++image) {
    T* image_out = out + image * rows * row_values;
    // The zeros: padding rows, padding columns, and the channels past the last.
    std::fill(image_out, image_out + first_row * row_values, T(0));
    std::fill(image_out + last_row * row_values, image_out + rows * row_values, T(0));
    for (std::int64_t row = first_row; row < last_row; ++row) {
      T* destination = image_out + row * row_values;
      std::fill(destination, destination + first * channel_stride, T(0));
      std::fill(destination + last * channel_stride, destination + row_values, T(0));
      if (channels < channel_stride)
        for (std::int64_t x = first; x < last; ++x)
          std::fill(destination + x * channel_stride + channels, destination + (x + 1) * channel_stride, T(0));
    }
    // Eight channels at a time, each read through its whole plane: eight sequential streams
    // the hardware prefetcher follows (a row at a time would jump between planes every
    // row, and each load would wait on memory).
    const T* image_in = input + image * channels * area;
    constexpr std::int64_t block = 8;
    if (upsampled) {
      for (std::int64_t c0 = 0; c0 < channels; c0 += block) {
        const std::int64_t block_channels = std::min(block, channels - c0);
        for (std::int64_t row = first_row; row < last_row; ++row) {
          T* destination = image_out + row * row_values + c0;
          const T* source = image_in + c0 * area + (row - padding) / 2 * source_width;
          for (std::int64_t x = first; x < last; ++x) {
            T* pixel = destination + x * channel_stride;
            const T* value = source + (x - padding) / 2;
            for (std::int64_t c = 0; c < block_channels; ++c) pixel[c] = value[c * area];
          }
        }
      }
      continue;
    }
    for (std::int64_t c0 = 0; c0 < channels; c0 += block) {
      const std::int64_t block_channels = std::min(block, channels - c0);
      for (std::int64_t row = first_row; row < last_row; ++row) {
        T* destination = image_out + row * row_values + c0;
        const T* source = image_in + c0 * area + (row - padding) * width - padding;
        if (block_channels == block) {
          for (std::int64_t x = first; x < last; ++x) {
            T* pixel = destination + x * channel_stride;
            const T* value = source + x;
            for (std::int64_t c = 0; c < block; ++c) pixel[c] = value[c * area];
          }
        } else {
          for (std::int64_t x = first; x < last; ++x)
            for (std::int64_t c = 0; c < block_channels; ++c) destination[x * channel_stride + c] = source[c * area + x];
        }
      }
    }
  }
}

// V = Bᵀ d B for tiles [first, first + count) of a channels-last group of images, a vector
// of channels at a time. V is [α², count, channel_stride]: point ξ of tile t at
// transformed[(ξ·count' + t)·channel_stride] with count' = point_stride / channel_stride.
template <class Vector, class Algorithm>
void transform_input_tiles(const typename Vector::value_type* images, const TileGrid& grid,
                           std::int64_t channel_stride, std::int64_t first, std::int64_t count,
                           typename Vector::value_type* transformed, std::int64_t point_stride) {
  using T = typename Vector::value_type;
  constexpr std::int64_t lanes = Vector::size;
  constexpr int alpha = Algorithm::input_tile, m = Algorithm::output_tile;
  const std::int64_t columns = grid.window_columns(), image_values = grid.window_rows() * columns * channel_stride;
  for (std::int64_t t = 0; t < count; ++t) {
    const std::int64_t tile = first + t, image = tile / grid.per_image();
    const std::int64_t tile_row = tile % grid.per_image() / grid.columns, tile_column = tile % grid.columns;
    const T* window = images + image * image_values + (m * tile_row * columns + m * tile_column) * channel_stride;
    for (std::int64_t c = 0; c < channel_stride; c += lanes) {
      Vector v[alpha][alpha];
      transform_both_ways<alpha>(
          [&](int i, int j) { return Vector::load_unaligned(window + (i * columns + j) * channel_stride + c); }, v,
          [](const auto& in, auto& out) { Algorithm::input(in, out); });
      T* destination = transformed + t * channel_stride + c;
      for (int i = 0; i < alpha; ++i)
        for (int j = 0; j < alpha; ++j) v[i][j].store_unaligned(destination + (alpha * i + j) * point_stride);
    }
  }
}

// Stores outputs o .. o + lanes − 1 of one tile into the panels that hold them: panel j
// keeps outputs j·nr .. j·nr + nr − 1 of all `count` tiles, [count, nr], so `tile_slot`
// (the tile's row in panel 0) moves by count·nr from one panel to the next. A vector no
// wider than a panel lies within one (the layout makes nr a multiple of it); a wider one
// is cut into nr-wide pieces, one per panel.
template <class Vector>
void store_into_panels(const Vector& values, std::int64_t o, std::int64_t count, std::int64_t nr,
                       typename Vector::value_type* tile_slot) {
  using T = typename Vector::value_type;
  constexpr std::int64_t lanes = Vector::size;
  if (lanes <= nr) {
    values.store_unaligned(tile_slot + (o / nr) * count * nr + o % nr);
    return;
  }
  alignas(64) T buffer[lanes];
  values.store_aligned(buffer);
  for (std::int64_t piece = 0; piece < lanes; piece += nr)
    std::copy(buffer + piece, buffer + piece + nr, tile_slot + (o + piece) / nr * count * nr);
}

// 0, 1, 2, ... scaled by `step`: the depth offsets of an operand read in place.
inline const std::int64_t* offsets_table(std::int64_t count, std::int64_t step) {
  thread_local std::vector<std::int64_t> table;
  table.resize(static_cast<std::size_t>(count));
  for (std::int64_t p = 0; p < count; ++p) table[static_cast<std::size_t>(p)] = p * step;
  return table.data();
}

// Groups of whole images per task, with at least `tiles` tiles in a group when the batch
// allows and at least two groups per thread.
inline std::int64_t images_per_group(std::int64_t batch, std::int64_t tiles_per_image, std::int64_t tiles) {
  const std::int64_t threads = std::max(1, num_threads());
  return std::clamp<std::int64_t>((tiles + tiles_per_image - 1) / tiles_per_image, 1,
                                  (batch + 2 * threads - 1) / (2 * threads));
}

// The transformed kernels as the B operand of the α² GEMMs: for point ξ and panel j of nr
// outputs, [channels, nr] with zeros past the last output; α² · output_stride · channels
// values. A function of the weights and the layout only, so a caller whose weights do not
// change (sampling) can keep it (winograd.cpp does).
template <class Vector, class Algorithm>
AlignedBuffer<typename Vector::value_type> pack_transformed_weights(const WinogradLayout<Vector, Algorithm>& layout,
                                                                    std::int64_t channels, std::int64_t outputs,
                                                                    const typename Vector::value_type* weight) {
  using T = typename Vector::value_type;
  const std::int64_t nr = layout.kernel.nr, panels = layout.panels;
  const std::int64_t values = points<Algorithm> * layout.output_stride * channels;
  const std::int64_t point_step = panels * channels * nr;
  AlignedBuffer<T> packed(static_cast<std::size_t>(values));
  // A training step packs its changed weights at every call. A panel's nr outputs are
  // transformed into a block first, then each point's row of nr values is written in one
  // run: written straight from each kernel's transform, the α² values would fall a power of
  // two apart (panels · channels · nr), all into one set of the cache.
  parallel_for(channels, 8, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> block(static_cast<std::size_t>(points<Algorithm> * nr));  // [point, lane]
    T u[points<Algorithm>];
    for (std::int64_t panel = 0; panel < panels; ++panel)
      for (std::int64_t c = begin; c < end; ++c) {
        for (std::int64_t lane = 0; lane < nr; ++lane) {
          const std::int64_t o = panel * nr + lane;
          if (o < outputs)
            transform_kernel<Algorithm>(weight + (o * channels + c) * 9, u);
          else
            std::fill(u, u + points<Algorithm>, T(0));
          for (std::int64_t point = 0; point < points<Algorithm>; ++point) block[point * nr + lane] = u[point];
        }
        T* slot = packed.data + (panel * channels + c) * nr;
        for (std::int64_t point = 0; point < points<Algorithm>; ++point)
          std::copy_n(block.begin() + point * nr, nr, slot + point * point_step);
      }
  });
  return packed;
}

// The input activation (fusion.hpp) applied to the real pixels of `images` channels-last
// images as copy_to_channels_last wrote them from the NCHW `input` (padding and channels
// past the last stay zero). Each image's statistics are taken from its planes, which the
// copy has just read: in cache, where a separate pass would read them from memory.
template <class T>
void activate_channels_last(const InputFusion<T>& activation, const T* input, std::int64_t images,
                            std::int64_t channels, std::int64_t height, std::int64_t width, std::int64_t padding,
                            std::int64_t rows, std::int64_t columns, std::int64_t channel_stride, T* images_out) {
  const std::int64_t first = std::min(padding, columns), last = std::min(padding + width, columns);
  const std::int64_t first_row = std::min(padding, rows), last_row = std::min(padding + height, rows);
  const std::int64_t padded_channels = round_up(channel_stride, std::int64_t(xsimd::batch<T>::size));
  thread_local std::vector<T> coefficients;
  coefficients.assign(static_cast<std::size_t>(2 * padded_channels), T(0));
  T* minus_scale = coefficients.data();
  T* minus_shift = minus_scale + padded_channels;
  for (std::int64_t image = 0; image < images; ++image) {
    activation_coefficients(activation, input + image * channels * height * width, channels, height * width,
                            minus_scale, minus_shift);
    T* image_out = images_out + image * rows * columns * channel_stride;
    for (std::int64_t row = first_row; row < last_row; ++row)
      activate_pixels(image_out + (row * columns + first) * channel_stride, last - first, channel_stride, minus_scale,
                      minus_shift);
  }
}

// A task converts a group of images to channels-last (upsampling or normalising them on the
// way, as input_fusion says), then runs chunks of its tiles through the three steps: input
// transform, α² GEMMs, output transform into NCHW (adding image_bias [batch, outputs], if
// any). The arguments are those of correlate_winograd (winograd.hpp), with the kernel, and
// the weights packed by pack_transformed_weights for the same layout.
template <class Vector, class Algorithm>
void correlate_packed(const Microkernel<typename Vector::value_type>& kernel, const typename Vector::value_type* input,
                      std::int64_t batch, std::int64_t channels, std::int64_t height, std::int64_t width,
                      std::int64_t padding, std::int64_t outputs, const typename Vector::value_type* packed_weights,
                      const typename Vector::value_type* bias, typename Vector::value_type* out,
                      const InputFusion<typename Vector::value_type>& input_fusion = {},
                      const typename Vector::value_type* image_bias = nullptr) {
  using T = typename Vector::value_type;
  constexpr std::int64_t lanes = Vector::size;
  constexpr int alpha = Algorithm::input_tile, m = Algorithm::output_tile;
  constexpr std::int64_t point_count = points<Algorithm>;
  // The statistics are taken from the input planes as they are: of the upsampled image they
  // would be summed in another order than group_norm's.
  check(!(input_fusion.upsample && input_fusion.normalizes()), "Winograd convolution",
        "cannot both upsample and normalise its input");
  const WinogradLayout<Vector, Algorithm> layout(kernel, channels, height, width, padding, outputs);
  const TileGrid& grid = layout.grid;
  const std::int64_t mr = kernel.mr, nr = kernel.nr, panels = layout.panels;
  const std::int64_t channel_stride = layout.channel_stride, output_stride = layout.output_stride;

  std::vector<T> biases(static_cast<std::size_t>(output_stride), T(0));  // zeros past the last output
  if (bias) std::copy(bias, bias + outputs, biases.begin());
  std::vector<T> image_biases;  // [batch, output_stride], zeros past the last output
  if (image_bias) {
    image_biases.assign(static_cast<std::size_t>(batch * output_stride), T(0));
    for (std::int64_t image = 0; image < batch; ++image)
      std::copy(image_bias + image * outputs, image_bias + (image + 1) * outputs,
                image_biases.begin() + image * output_stride);
  }

  // A chunk's transformed tiles and GEMM results stay in L2 between the three steps.
  const std::int64_t chunk = std::clamp<std::int64_t>(
      (std::int64_t{96} << 10) / (point_count * (channel_stride + output_stride) * std::int64_t(sizeof(T))) / mr * mr,
      mr, 16 * mr);
  const std::int64_t group = images_per_group(batch, grid.per_image(), chunk);
  parallel_for(batch, group, [&](std::int64_t first_image, std::int64_t end_image) {
    const std::int64_t images = end_image - first_image;
    T* channels_last = scratch<T>(images_slot, static_cast<std::size_t>(images * layout.image_values));
    const T* first_input = input + first_image * input_fusion.image_values(channels, height, width);
    copy_to_channels_last(first_input, images, channels, height, width, padding, grid.window_rows(),
                          grid.window_columns(), channel_stride, channels_last, input_fusion.upsample);
    if (input_fusion.normalizes())
      activate_channels_last(input_fusion, first_input, images, channels, height, width, padding, grid.window_rows(),
                             grid.window_columns(), channel_stride, channels_last);
    T* transformed = scratch<T>(transformed_slot, static_cast<std::size_t>(point_count * chunk * channel_stride));
    T* products = scratch<T>(products_slot, static_cast<std::size_t>(point_count * chunk * output_stride));
    const std::int64_t input_point_stride = chunk * channel_stride, output_point_stride = chunk * output_stride;
    const std::int64_t* depth_offsets = offsets_table(channels, 1);
    for (std::int64_t begin = 0; begin < images * grid.per_image(); begin += chunk) {
      const std::int64_t count = std::min(chunk, images * grid.per_image() - begin);
      transform_input_tiles<Vector, Algorithm>(channels_last, grid, channel_stride, begin, count, transformed,
                                               input_point_stride);

      // M_ξ[tiles, outputs] = V_ξ[tiles, channels] · U_ξ[channels, outputs], V read in place.
      for (std::int64_t point = 0; point < point_count; ++point)
        for (std::int64_t panel = 0; panel < panels; ++panel) {
          const T* b_panel = packed_weights + (point * panels + panel) * channels * nr;
          for (std::int64_t row = 0; row < count; row += mr) {
            const std::int64_t rows = std::min(mr, count - row);
            std::int64_t row_offsets[max_rows];
            for (std::int64_t r = 0; r < mr; ++r) row_offsets[r] = std::min(r, rows - 1) * channel_stride;
            kernel.run_gathered(channels, transformed + point * input_point_stride + row * channel_stride,
                                depth_offsets, row_offsets, b_panel,
                                products + point * output_point_stride + row * output_stride + panel * nr,
                                output_stride, T(1), T(0), rows, nr);
          }
        }

      // Y = Aᵀ M A (+ bias), a vector of outputs at a time, written into the NCHW output
      // (the last tile row or column may fall outside it).
      const std::int64_t plane = grid.out_height * grid.out_width;
      for (std::int64_t t = 0; t < count; ++t) {
        const std::int64_t tile = begin + t, image = first_image + tile / grid.per_image();
        const std::int64_t oy = m * (tile % grid.per_image() / grid.columns), ox = m * (tile % grid.columns);
        const std::int64_t valid_rows = std::min<std::int64_t>(m, grid.out_height - oy);
        const std::int64_t valid_columns = std::min<std::int64_t>(m, grid.out_width - ox);
        T* corner = out + image * outputs * plane + oy * grid.out_width + ox;
        for (std::int64_t o = 0; o < outputs; o += lanes) {
          const T* source = products + t * output_stride + o;
          Vector values[m][m];
          transform_both_ways<alpha>(
              [&](int i, int j) { return Vector::load_unaligned(source + (alpha * i + j) * output_point_stride); },
              values, [](const auto& in, auto& out) { Algorithm::output(in, out); });
          const Vector offset = Vector::load_unaligned(biases.data() + o);
          Vector image_offset;  // rounded after the bias, as a separate add would be
          if (image_bias) image_offset = Vector::load_unaligned(image_biases.data() + image * output_stride + o);
          alignas(64) T y[m][m][lanes];
          for (int i = 0; i < m; ++i)
            for (int j = 0; j < m; ++j) {
              Vector value = values[i][j] + offset;
              if (image_bias) value = value + image_offset;
              value.store_aligned(y[i][j]);
            }
          if (valid_rows == m && valid_columns == m && o + lanes <= outputs) {  // the common case, unrolled
            for (std::int64_t lane = 0; lane < lanes; ++lane) {
              T* destination = corner + (o + lane) * plane;
              for (int i = 0; i < m; ++i)
                for (int j = 0; j < m; ++j) destination[i * grid.out_width + j] = y[i][j][lane];
            }
            continue;
          }
          for (std::int64_t lane = 0; lane < std::min(lanes, outputs - o); ++lane) {
            T* destination = corner + (o + lane) * plane;
            for (std::int64_t i = 0; i < valid_rows; ++i)
              for (std::int64_t j = 0; j < valid_columns; ++j) destination[i * grid.out_width + j] = y[i][j][lane];
          }
        }
      }
    }
  });
}

// correlate_packed with the weights packed for this call.
template <class Vector, class Algorithm>
void correlate(const Microkernel<typename Vector::value_type>& kernel, const typename Vector::value_type* input,
               std::int64_t batch, std::int64_t channels, std::int64_t height, std::int64_t width,
               std::int64_t padding, std::int64_t outputs, const typename Vector::value_type* weight,
               const typename Vector::value_type* bias, typename Vector::value_type* out,
               const InputFusion<typename Vector::value_type>& input_fusion = {},
               const typename Vector::value_type* image_bias = nullptr) {
  const WinogradLayout<Vector, Algorithm> layout(kernel, channels, height, width, padding, outputs);
  const auto packed = pack_transformed_weights(layout, channels, outputs, weight);
  correlate_packed<Vector, Algorithm>(kernel, input, batch, channels, height, width, padding, outputs, packed.data,
                                      bias, out, input_fusion, image_bias);
}

// dU_ξ[c, o] = Σ_tiles V_ξ[tile, c] · dM_ξ[tile, o] with dM = A dY Aᵀ the output gradient's
// tiles carried back through the output transform; then dW = Gᵀ dU G. The images are cut
// into a fixed number of slices (not one per thread): each slice sums its tiles in order
// into its own dU, and the slices are added in order, so the sums do not depend on the
// thread count. The arguments are those of weight_gradient_winograd, with the kernel.
template <class Vector, class Algorithm>
void weight_gradient(const Microkernel<typename Vector::value_type>& kernel,
                     const typename Vector::value_type* input, std::int64_t batch, std::int64_t channels,
                     std::int64_t height, std::int64_t width, std::int64_t padding, std::int64_t outputs,
                     const typename Vector::value_type* output_gradient,
                     typename Vector::value_type* weight_gradient) {
  using T = typename Vector::value_type;
  constexpr std::int64_t lanes = Vector::size;
  constexpr int alpha = Algorithm::input_tile, m = Algorithm::output_tile;
  constexpr std::int64_t point_count = points<Algorithm>;
  const WinogradLayout<Vector, Algorithm> layout(kernel, channels, height, width, padding, outputs);
  const TileGrid& grid = layout.grid;
  const std::int64_t mr = kernel.mr, nr = kernel.nr, panels = layout.panels;
  const std::int64_t channel_stride = layout.channel_stride, output_stride = layout.output_stride;
  const std::int64_t out_plane = grid.out_height * grid.out_width;
  const std::int64_t gradient_rows = m * grid.rows, gradient_columns = m * grid.columns;
  const std::int64_t gradient_values = gradient_rows * gradient_columns * output_stride;

  constexpr std::int64_t slices_wanted = 8;
  const std::int64_t slices = std::min(batch, slices_wanted);
  const std::int64_t partial_values = point_count * channels * output_stride;  // dU_ξ[c, o] for one slice
  AlignedBuffer<T> partials(static_cast<std::size_t>(slices * partial_values));
  // A chunk of tiles is the GEMMs' depth: long enough that loading and storing the dU tiles
  // costs little beside the FMAs; its transformed tiles are read a few times each. The
  // chunk's operands take the same room for either tile (128 tiles of 16 points).
  constexpr std::int64_t chunk = 2048 / point_count;
  const std::int64_t group = std::max<std::int64_t>(1, chunk / grid.per_image());
  parallel_for(slices, 1, [&](std::int64_t slice, std::int64_t) {
    T* partial = partials.data + slice * partial_values;
    const std::int64_t first_image = slice * batch / slices, end_image = (slice + 1) * batch / slices;
    bool first_product = true;
    for (std::int64_t image0 = first_image; image0 < end_image; image0 += group) {
      const std::int64_t images = std::min(group, end_image - image0);
      T* channels_last = scratch<T>(images_slot, static_cast<std::size_t>(images * layout.image_values));
      copy_to_channels_last(input + image0 * channels * height * width, images, channels, height, width, padding,
                            grid.window_rows(), grid.window_columns(), channel_stride, channels_last);
      T* gradient = scratch<T>(output_gradient_slot, static_cast<std::size_t>(images * gradient_values));
      copy_to_channels_last(output_gradient + image0 * outputs * out_plane, images, outputs, grid.out_height,
                            grid.out_width, 0, gradient_rows, gradient_columns, output_stride, gradient);
      const std::int64_t tiles = images * grid.per_image();
      for (std::int64_t begin = 0; begin < tiles; begin += chunk) {
        const std::int64_t count = std::min(chunk, tiles - begin);
        T* transformed = scratch<T>(transformed_slot, static_cast<std::size_t>(point_count * count * channel_stride));
        transform_input_tiles<Vector, Algorithm>(channels_last, grid, channel_stride, begin, count, transformed,
                                                 count * channel_stride);
        // dM = A e Aᵀ for each m x m tile e of dY, packed as the GEMMs' B operand: point ξ,
        // panel j: [count, nr].
        T* packed = scratch<T>(products_slot, static_cast<std::size_t>(point_count * count * output_stride));
        const std::int64_t point_stride = count * output_stride;
        const std::int64_t next_row = gradient_columns * output_stride;
        for (std::int64_t t = 0; t < count; ++t) {
          const std::int64_t tile = begin + t, image = tile / grid.per_image();
          const std::int64_t tile_row = tile % grid.per_image() / grid.columns, tile_column = tile % grid.columns;
          const T* e = gradient + ((image * gradient_rows + m * tile_row) * gradient_columns + m * tile_column) *
                                      output_stride;
          T* tile_slot = packed + t * nr;
          for (std::int64_t o = 0; o < output_stride; o += lanes) {
            Vector carried_back[alpha][alpha];
            transform_both_ways<m>(
                [&](int i, int j) { return Vector::load_unaligned(e + i * next_row + j * output_stride + o); },
                carried_back, [](const auto& in, auto& out) { Algorithm::output_adjoint(in, out); });
            for (int i = 0; i < alpha; ++i)
              for (int j = 0; j < alpha; ++j)
                store_into_panels(carried_back[i][j], o, count, nr, tile_slot + (alpha * i + j) * point_stride);
          }
        }
        // dU_ξ[c, o] += Σ_t V_ξ[t, c] · dM_ξ[t, o]: rows are channels, V read in place.
        const std::int64_t* depth_offsets = offsets_table(count, channel_stride);
        for (std::int64_t point = 0; point < point_count; ++point)
          for (std::int64_t panel = 0; panel < panels; ++panel)
            for (std::int64_t c = 0; c < channels; c += mr) {
              const std::int64_t rows = std::min(mr, channels - c);
              std::int64_t row_offsets[max_rows];
              for (std::int64_t r = 0; r < mr; ++r) row_offsets[r] = c + std::min(r, rows - 1);
              kernel.run_gathered(count, transformed + point * count * channel_stride, depth_offsets, row_offsets,
                                  packed + (point * panels + panel) * count * nr,
                                  partial + (point * channels + c) * output_stride + panel * nr, output_stride, T(1),
                                  first_product ? T(0) : T(1), rows, nr);
            }
        first_product = false;
      }
    }
  });
  for (std::int64_t slice = 1; slice < slices; ++slice) {
    const T* partial = partials.data + slice * partial_values;
    for (std::int64_t i = 0; i < partial_values; ++i) partials.data[i] += partial[i];
  }
  parallel_for(outputs, 8, [&](std::int64_t begin, std::int64_t end) {
    T du[point_count];
    for (std::int64_t o = begin; o < end; ++o)
      for (std::int64_t c = 0; c < channels; ++c) {
        for (std::int64_t point = 0; point < point_count; ++point)
          du[point] = partials.data[(point * channels + c) * output_stride + o];
        transform_kernel_gradient<Algorithm>(du, weight_gradient + (o * channels + c) * 9);
      }
  });
}

}  // namespace ddpm::convolution_detail::winograd
