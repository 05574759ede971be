#include "tensor/convolution/direct.hpp"

#include <algorithm>

#include <xsimd/xsimd.hpp>

#include "tensor/parallel.hpp"

namespace ddpm::convolution_detail {
namespace {
constexpr std::int64_t direct_output_channels = 4, direct_kernel_area = 9, chunk = 8;
}  // namespace

bool direct_convolution_suits(const Geometry& g) {
  return g.out_channels <= direct_output_channels && g.kernel_area() <= direct_kernel_area && g.stride == 1;
}

// y[n, co, oy, ox] = bias[co] + Σ_{ci, kh, kw} w[co, ci, kh, kw] · padded[n, ci, oy + kh·d, ox + kw·d];
// one task per (image, output channel). An output row is cut into four vectors of columns
// summed side by side (four independent FMA chains, not one waiting on its own latency);
// the last vector ends at the row's end and may overlap the one before it, which then
// computes the same columns in the same order, so the overlap writes identical values.
template <class T>
void convolve_directly(const Geometry& g, const T* __restrict padded, std::int64_t padded_height,
                       std::int64_t padded_width, const T* __restrict weight, const T* __restrict bias,
                       T* __restrict output) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size, vectors = 4;
  const std::int64_t taps = g.in_channels * g.kernel_area();
  parallel_for(g.batch * g.out_channels, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t task = begin; task < end; ++task) {
      const std::int64_t image = task / g.out_channels, channel = task % g.out_channels;
      const T* w = weight + channel * taps;
      const T offset = bias ? bias[channel] : T(0);
      const T* planes = padded + image * g.in_channels * padded_height * padded_width;
      for (std::int64_t oy = 0; oy < g.out_height; ++oy) {
        T* y = output + (task * g.out_height + oy) * g.out_width;
        // The first input value tap (in, kh, kw) reads for this output row.
        auto row = [&](std::int64_t in, std::int64_t kh, std::int64_t kw) {
          return planes + (in * padded_height + oy + kh * g.dilation) * padded_width + kw * g.dilation;
        };
        if (g.out_width < width) {  // narrower than one vector
          for (std::int64_t ox = 0; ox < g.out_width; ++ox) {
            T sum = 0;
            for (std::int64_t in = 0, tap = 0; in < g.in_channels; ++in)
              for (std::int64_t kh = 0; kh < g.kernel_height; ++kh)
                for (std::int64_t kw = 0; kw < g.kernel_width; ++kw, ++tap) sum += w[tap] * row(in, kh, kw)[ox];
            y[ox] = sum + offset;
          }
          continue;
        }
        for (std::int64_t x0 = 0; x0 < g.out_width; x0 += vectors * width) {
          std::int64_t starts[vectors];
          for (std::int64_t v = 0; v < vectors; ++v) starts[v] = std::min(x0 + v * width, g.out_width - width);
          Batch sums[vectors];
          for (auto& sum : sums) sum = Batch(T(0));
          for (std::int64_t in = 0, tap = 0; in < g.in_channels; ++in)
            for (std::int64_t kh = 0; kh < g.kernel_height; ++kh)
              for (std::int64_t kw = 0; kw < g.kernel_width; ++kw, ++tap) {
                const Batch value(w[tap]);
                const T* x = row(in, kh, kw);
                for (std::int64_t v = 0; v < vectors; ++v)
                  sums[v] = xsimd::fma(value, Batch::load_unaligned(x + starts[v]), sums[v]);
              }
          for (std::int64_t v = 0; v < vectors; ++v) (sums[v] + Batch(offset)).store_unaligned(y + starts[v]);
        }
      }
    }
  });
}

// dw[co, (ci, kh, kw)] = Σ_{n, oy, ox} dy[n, co, oy, ox] · shifted plane; one task per
// (co, ci), each of its (at most 9) taps summed in `chunk` lanes, added up at the end.
template <class T>
void weight_gradient_directly(const Geometry& g, const T* __restrict output_gradient, const T* __restrict padded,
                              std::int64_t padded_height, std::int64_t padded_width, T* __restrict weight_gradient) {
  const std::int64_t area = g.kernel_area(), full_chunks = g.out_width / chunk;
  parallel_for(g.out_channels * g.in_channels, 1, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t task = begin; task < end; ++task) {
      const std::int64_t channel = task / g.in_channels, in = task % g.in_channels;
      T sums[direct_kernel_area][chunk] = {};
      for (std::int64_t image = 0; image < g.batch; ++image)
        for (std::int64_t oy = 0; oy < g.out_height; ++oy) {
          const T* dy = output_gradient + ((image * g.out_channels + channel) * g.out_height + oy) * g.out_width;
          const T* x_row = padded + ((image * g.in_channels + in) * padded_height + oy) * padded_width;
          for (std::int64_t tap = 0; tap < area; ++tap) {
            const T* x = x_row + (tap / g.kernel_width) * g.dilation * padded_width + (tap % g.kernel_width) * g.dilation;
            T* sum = sums[tap];
            for (std::int64_t c = 0; c < full_chunks; ++c)
              for (std::int64_t j = 0; j < chunk; ++j) sum[j] += dy[c * chunk + j] * x[c * chunk + j];
            for (std::int64_t ox = full_chunks * chunk; ox < g.out_width; ++ox) sum[ox % chunk] += dy[ox] * x[ox];
          }
        }
      for (std::int64_t tap = 0; tap < area; ++tap) {
        T total = 0;
        for (std::int64_t j = 0; j < chunk; ++j) total += sums[tap][j];
        weight_gradient[task * area + tap] = total;
      }
    }
  });
}


#define DDPM_INSTANTIATE_DIRECT_CONVOLUTION(T)                                                                 \
  template void convolve_directly<T>(const Geometry&, const T*, std::int64_t, std::int64_t, const T*, const T*, T*); \
  template void weight_gradient_directly<T>(const Geometry&, const T*, const T*, std::int64_t, std::int64_t, T*);
DDPM_INSTANTIATE_DIRECT_CONVOLUTION(float)
DDPM_INSTANTIATE_DIRECT_CONVOLUTION(double)
#undef DDPM_INSTANTIATE_DIRECT_CONVOLUTION

}  // namespace ddpm::convolution_detail
