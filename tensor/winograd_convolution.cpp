#include "tensor/winograd_convolution.hpp"

#include <algorithm>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/gemm/blocking.hpp"
#include "tensor/gemm/microkernel.hpp"
#include "tensor/parallel.hpp"
#include "tensor/tensor.hpp"

namespace ddpm::convolution_detail {
namespace {

using gemm_detail::round_up;
using gemm_detail::scratch;

constexpr std::int64_t points = 16;  // of a transformed 4 x 4 tile
constexpr std::int64_t minimum_channels = 16;
constexpr int max_rows = gemm_detail::max_microkernel_rows;

// u = G g Gᵀ for one 3 x 3 kernel g (row-major), G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
template <class T>
void transform_kernel(const T* g, T* u) {
  T rows[4][3];  // G g
  for (int j = 0; j < 3; ++j) {
    rows[0][j] = g[j];
    rows[1][j] = (g[j] + g[3 + j] + g[6 + j]) / 2;
    rows[2][j] = (g[j] - g[3 + j] + g[6 + j]) / 2;
    rows[3][j] = g[6 + j];
  }
  for (int i = 0; i < 4; ++i) {
    u[i * 4 + 0] = rows[i][0];
    u[i * 4 + 1] = (rows[i][0] + rows[i][1] + rows[i][2]) / 2;
    u[i * 4 + 2] = (rows[i][0] - rows[i][1] + rows[i][2]) / 2;
    u[i * 4 + 3] = rows[i][2];
  }
}

// The transformed kernels as the B operand of the 16 GEMMs, packed once: for point ξ and
// panel j of nr outputs, [channels, nr] with zeros past the last output.
template <class T>
Tensor pack_transformed_weight(const T* weight, std::int64_t channels, std::int64_t outputs, std::int64_t nr) {
  const std::int64_t panels = round_up(outputs, nr) / nr;
  Tensor packed = Tensor::empty({points, panels, channels, nr}, dtype_of<T>());
  T* data = packed.data<T>();
  std::fill(data, data + packed.numel(), T(0));
  parallel_for(outputs, 8, [&](std::int64_t begin, std::int64_t end) {
    T u[points];
    for (std::int64_t o = begin; o < end; ++o)
      for (std::int64_t c = 0; c < channels; ++c) {
        transform_kernel(weight + (o * channels + c) * 9, u);
        for (std::int64_t point = 0; point < points; ++point)
          data[((point * panels + o / nr) * channels + c) * nr + o % nr] = u[point];
      }
  });
  return packed;
}

// The input in channels-last order with its zero padding in memory: [batch, rows,
// columns, channel_stride], rows = 2·tile_rows + 2 and columns = 2·tile_columns + 2, so
// every tile's 4 x 4 window lies inside, and channel_stride a whole number of vectors
// (zeros past the last channel). A tile's value at (i, j) for a vector of channels is
// then one load; the transpose is paid once per input value, not once per tile (each
// value lies in four tiles).
struct ChannelsLast {
  Tensor buffer;
  std::int64_t rows, columns, channel_stride;
};

template <class T>
ChannelsLast to_channels_last(const T* input, std::int64_t batch, std::int64_t channels, std::int64_t height,
                              std::int64_t width, std::int64_t padding, std::int64_t rows, std::int64_t columns,
                              std::int64_t channel_stride) {
  ChannelsLast result{Tensor::empty({batch, rows, columns, channel_stride}, dtype_of<T>()), rows, columns,
                      channel_stride};
  T* out = result.buffer.data<T>();
  const std::int64_t row_values = columns * channel_stride;
  parallel_for(batch * rows, 4, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t task = begin; task < end; ++task) {
      const std::int64_t image = task / rows, y = task % rows - padding;
      T* row = out + task * row_values;
      if (y < 0 || y >= height) {
        std::fill(row, row + row_values, T(0));
        continue;
      }
      const std::int64_t first = std::min(padding, columns), last = std::min(padding + width, columns);
      std::fill(row, row + first * channel_stride, T(0));
      std::fill(row + last * channel_stride, row + row_values, T(0));
      const T* source = input + (image * channels * height + y) * width - padding;
      for (std::int64_t x = first; x < last; ++x) {
        T* pixel = row + x * channel_stride;
        for (std::int64_t c = 0; c < channels; ++c) pixel[c] = source[c * height * width + x];
        std::fill(pixel + channels, pixel + channel_stride, T(0));
      }
    }
  });
  return result;
}

}  // namespace

bool winograd_suits(std::int64_t kernel_height, std::int64_t kernel_width, std::int64_t stride, std::int64_t dilation,
                    std::int64_t inputs, std::int64_t outputs) {
  return kernel_height == 3 && kernel_width == 3 && stride == 1 && dilation == 1 && inputs >= minimum_channels &&
         outputs >= minimum_channels;
}

template <class T>
void correlate_winograd(const T* input, std::int64_t batch, std::int64_t channels, std::int64_t height,
                        std::int64_t width, std::int64_t padding, std::int64_t outputs, const T* weight, const T* bias,
                        T* out) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t lanes = Batch::size;
  const auto& kernel = gemm_detail::active_microkernel<T>();
  const std::int64_t mr = kernel.mr, nr = kernel.nr;
  const std::int64_t out_height = height + 2 * padding - 2, out_width = width + 2 * padding - 2;
  const std::int64_t tile_rows = (out_height + 1) / 2, tile_columns = (out_width + 1) / 2;
  const std::int64_t tiles_per_image = tile_rows * tile_columns, tiles = batch * tiles_per_image;
  const std::int64_t channel_stride = round_up(channels, lanes);
  const std::int64_t output_stride = round_up(outputs, nr), panels = output_stride / nr;
  const ChannelsLast x = to_channels_last(input, batch, channels, height, width, padding, 2 * tile_rows + 2,
                                          2 * tile_columns + 2, channel_stride);
  const Tensor packed = pack_transformed_weight(weight, channels, outputs, nr);
  const T* x_data = x.buffer.data<T>();
  const T* u = packed.data<T>();

  // A chunk's transformed tiles and GEMM results stay in L2 between the three steps.
  const std::int64_t chunk =
      std::clamp<std::int64_t>((std::int64_t{96} << 10) / (points * (channel_stride + output_stride) * std::int64_t(sizeof(T))) / mr * mr,
                               mr, 16 * mr);
  parallel_for(tiles, chunk, [&](std::int64_t begin, std::int64_t end) {
    const std::int64_t count = end - begin;
    T* transformed = scratch<T>(2, static_cast<std::size_t>(points * chunk * channel_stride));  // [ξ, tile, channel]
    T* products = scratch<T>(3, static_cast<std::size_t>(points * chunk * output_stride));      // [ξ, tile, output]
    const std::int64_t input_point_stride = chunk * channel_stride, output_point_stride = chunk * output_stride;

    // 1. V = Bᵀ d B, Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], a vector of channels at a time.
    for (std::int64_t t = 0; t < count; ++t) {
      const std::int64_t tile = begin + t, image = tile / tiles_per_image;
      const std::int64_t tile_row = tile % tiles_per_image / tile_columns, tile_column = tile % tile_columns;
      const T* window = x_data + ((image * x.rows + 2 * tile_row) * x.columns + 2 * tile_column) * channel_stride;
      for (std::int64_t c = 0; c < channel_stride; c += lanes) {
        Batch r[4][4];  // Bᵀ d
        for (int j = 0; j < 4; ++j) {
          const Batch d0 = Batch::load_unaligned(window + (0 * x.columns + j) * channel_stride + c);
          const Batch d1 = Batch::load_unaligned(window + (1 * x.columns + j) * channel_stride + c);
          const Batch d2 = Batch::load_unaligned(window + (2 * x.columns + j) * channel_stride + c);
          const Batch d3 = Batch::load_unaligned(window + (3 * x.columns + j) * channel_stride + c);
          r[0][j] = d0 - d2, r[1][j] = d1 + d2, r[2][j] = d2 - d1, r[3][j] = d1 - d3;
        }
        T* destination = transformed + t * channel_stride + c;
        for (int i = 0; i < 4; ++i) {
          (r[i][0] - r[i][2]).store_unaligned(destination + (4 * i + 0) * input_point_stride);
          (r[i][1] + r[i][2]).store_unaligned(destination + (4 * i + 1) * input_point_stride);
          (r[i][2] - r[i][1]).store_unaligned(destination + (4 * i + 2) * input_point_stride);
          (r[i][1] - r[i][3]).store_unaligned(destination + (4 * i + 3) * input_point_stride);
        }
      }
    }

    // 2. M_ξ[tiles, outputs] = V_ξ[tiles, channels] · U_ξ[channels, outputs], V read in place.
    thread_local std::vector<std::int64_t> depth_offsets;
    if (static_cast<std::int64_t>(depth_offsets.size()) < channels) {
      depth_offsets.resize(static_cast<std::size_t>(channels));
      for (std::int64_t p = 0; p < channels; ++p) depth_offsets[static_cast<std::size_t>(p)] = p;
    }
    for (std::int64_t point = 0; point < points; ++point)
      for (std::int64_t panel = 0; panel < panels; ++panel) {
        const T* b_panel = u + (point * panels + panel) * channels * nr;
        for (std::int64_t row = 0; row < count; row += mr) {
          const std::int64_t rows = std::min(mr, count - row);
          std::int64_t row_offsets[max_rows];
          for (std::int64_t r = 0; r < mr; ++r) row_offsets[r] = std::min(r, rows - 1) * channel_stride;
          kernel.run_gathered(channels, transformed + point * input_point_stride + row * channel_stride,
                              depth_offsets.data(), row_offsets, b_panel,
                              products + point * output_point_stride + row * output_stride + panel * nr, output_stride,
                              T(1), T(0), rows, nr);
        }
      }

    // 3. Y = Aᵀ M A (+ bias), Aᵀ = [1 1 1 0; 0 1 −1 −1], a vector of outputs at a time,
    // written into the NCHW output (the last tile row or column may fall outside it).
    for (std::int64_t t = 0; t < count; ++t) {
      const std::int64_t tile = begin + t, image = tile / tiles_per_image;
      const std::int64_t tile_row = tile % tiles_per_image / tile_columns, tile_column = tile % tile_columns;
      const std::int64_t oy = 2 * tile_row, ox = 2 * tile_column;
      const std::int64_t valid_rows = std::min<std::int64_t>(2, out_height - oy);
      const std::int64_t valid_columns = std::min<std::int64_t>(2, out_width - ox);
      T* corner = out + (image * outputs * out_height + oy) * out_width + ox;
      for (std::int64_t o = 0; o < outputs; o += lanes) {
        const T* source = products + t * output_stride + o;
        Batch s[2][4];  // Aᵀ M
        for (int j = 0; j < 4; ++j) {
          const Batch m0 = Batch::load_unaligned(source + (0 + j) * output_point_stride);
          const Batch m1 = Batch::load_unaligned(source + (4 + j) * output_point_stride);
          const Batch m2 = Batch::load_unaligned(source + (8 + j) * output_point_stride);
          const Batch m3 = Batch::load_unaligned(source + (12 + j) * output_point_stride);
          s[0][j] = m0 + m1 + m2;
          s[1][j] = m1 - m2 - m3;
        }
        alignas(64) T y[2][2][lanes];
        for (int i = 0; i < 2; ++i) {
          (s[i][0] + s[i][1] + s[i][2]).store_aligned(y[i][0]);
          (s[i][1] - s[i][2] - s[i][3]).store_aligned(y[i][1]);
        }
        const std::int64_t valid_outputs = std::min(lanes, outputs - o);
        for (std::int64_t lane = 0; lane < valid_outputs; ++lane) {
          T* plane = corner + (o + lane) * out_height * out_width;
          const T offset = bias ? bias[o + lane] : T(0);
          for (std::int64_t i = 0; i < valid_rows; ++i)
            for (std::int64_t j = 0; j < valid_columns; ++j) plane[i * out_width + j] = y[i][j][lane] + offset;
        }
      }
    }
  });
}

template void correlate_winograd<float>(const float*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                        std::int64_t, std::int64_t, const float*, const float*, float*);
template void correlate_winograd<double>(const double*, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                         std::int64_t, std::int64_t, const double*, const double*, double*);

}  // namespace ddpm::convolution_detail
