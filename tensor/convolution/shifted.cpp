#include "tensor/convolution/shifted.hpp"

#include <algorithm>
#include <vector>

#include "tensor/gemm/blocking.hpp"
#include "tensor/gemm/microkernel.hpp"
#include "tensor/parallel.hpp"

namespace ddpm::convolution_detail {
namespace {

using gemm_detail::AlignedBuffer;
using gemm_detail::depth_step;
using gemm_detail::round_up;
using gemm_detail::scratch;

constexpr int max_rows = gemm_detail::max_microkernel_rows;

// Where each output pixel's window starts in a padded image, and where each tap lies
// from there: A(pixel, tap) = image[pixel_offsets[pixel] + tap_offsets[tap]].
struct Offsets {
  std::int64_t plane;                       // values in one padded plane
  std::vector<std::int64_t> pixel_offsets;  // [OH·OW]: s·oy·W + s·ox
  std::vector<std::int64_t> tap_offsets;    // [C·KH·KW]: c·plane + kh·d·W + kw·d
};

template <class T>
Offsets make_offsets(const PaddedPlanes<T>& planes, const KernelWindow& window, std::int64_t out_height,
                     std::int64_t out_width) {
  Offsets offsets;
  offsets.plane = planes.height * planes.width;
  for (std::int64_t oy = 0; oy < out_height; ++oy)
    for (std::int64_t ox = 0; ox < out_width; ++ox)
      offsets.pixel_offsets.push_back(window.stride * (oy * planes.width + ox));
  for (std::int64_t c = 0; c < planes.channels; ++c)
    for (std::int64_t kh = 0; kh < window.height; ++kh)
      for (std::int64_t kw = 0; kw < window.width; ++kw)
        offsets.tap_offsets.push_back(c * offsets.plane + kh * window.dilation * planes.width + kw * window.dilation);
  return offsets;
}

// The MR row offsets of a tile starting at entry `first` of `table` (`count` valid); rows
// past the end repeat the last valid one (computed, then dropped).
void tile_offsets(const std::int64_t* table, std::int64_t first, std::int64_t count, std::int64_t mr,
                  std::int64_t* out) {
  for (std::int64_t r = 0; r < mr; ++r) out[r] = table[first + std::min(r, count - 1)];
}

// Weights [outputs, taps] as the microkernel's B operand, packed once: panel j holds
// outputs j·nr .. j·nr + nr − 1 as [taps, nr], zeros past the last output.
template <class T>
void pack_weight_panels(const T* weight, std::int64_t outputs, std::int64_t taps, std::int64_t nr, T* out) {
  const std::int64_t panels = round_up(outputs, nr) / nr;
  for (std::int64_t j = 0; j < panels; ++j)
    for (std::int64_t tap = 0; tap < taps; ++tap)
      for (std::int64_t c = 0; c < nr; ++c) {
        const std::int64_t o = j * nr + c;
        out[(j * taps + tap) * nr + c] = o < outputs ? weight[o * taps + tap] : T(0);
      }
}

// result[i, o] = Σ_tap input[input_offsets[i] + tap_offsets[tap]] · weight[o, tap] for
// `count` positions: the gathered input is the GEMM's A (MR positions per tile), the
// packed weights B (NR outputs per panel). result: [round_up(count, MR), columns].
template <class T>
void multiply_gathered(const gemm_detail::Microkernel<T>& kernel, const T* input, const std::int64_t* input_offsets,
                       std::int64_t count, const std::vector<std::int64_t>& tap_offsets, const T* packed_weight,
                       std::int64_t columns, T* result) {
  const std::int64_t mr = kernel.mr, nr = kernel.nr, panels = columns / nr;
  const std::int64_t taps = static_cast<std::int64_t>(tap_offsets.size());
  const std::int64_t step = depth_step(taps, kernel.kc);
  for (std::int64_t p0 = 0; p0 < taps; p0 += step) {
    const std::int64_t depths = std::min(step, taps - p0);
    for (std::int64_t j = 0; j < panels; ++j)
      for (std::int64_t i = 0; i < count; i += mr) {
        std::int64_t row_offsets[max_rows];
        tile_offsets(input_offsets, i, std::min(mr, count - i), mr, row_offsets);
        kernel.run_gathered(depths, input, tap_offsets.data() + p0, row_offsets, packed_weight + (j * taps + p0) * nr,
                            result + i * columns + j * nr, columns, T(1), p0 == 0 ? T(0) : T(1),
                            std::min(mr, count - i), nr);
      }
  }
}

// C[position, o] = Σ_tap A(position, tap) · weight[o, tap] over every (image, pixel)
// position, A read in place (multiply_gathered), so the U-Net's channel counts (multiples
// of 16) fill every tile. Positions run across images, so a 7 x 7 image's 49 pixels do not
// leave a tile part-empty. The result is transposed into NCHW out [batch, outputs,
// pixels] with the bias added.
template <class T>
void correlate_gathered(const UnpaddedPlanes<T>& input, const Offsets& offsets, std::int64_t outputs, const T* weight,
                        const T* bias, T* out) {
  const auto& kernel = gemm_detail::active_microkernel<T>();
  const std::int64_t mr = kernel.mr, nr = kernel.nr;
  const std::int64_t taps = static_cast<std::int64_t>(offsets.tap_offsets.size());
  const std::int64_t pixels = static_cast<std::int64_t>(offsets.pixel_offsets.size());
  const std::int64_t columns = round_up(outputs, nr);
  AlignedBuffer<T> packed_weight(static_cast<std::size_t>(columns * taps));
  pack_weight_panels(weight, outputs, taps, nr, packed_weight.data);

  // A task per image when images are large (its writes then stay within the image's
  // planes), groups of small images as one run of at least 32 row tiles (192 positions on
  // AVX2's 6-row tile, where it was measured); and at least two tasks per thread.
  const std::int64_t total = input.batch * pixels;
  const std::int64_t threads = std::max(1, num_threads());
  const std::int64_t least_run = 32 * mr;
  const std::int64_t chunk = std::min(pixels >= least_run ? pixels : least_run,
                                      round_up((total + 2 * threads - 1) / (2 * threads), mr));
  const std::int64_t tasks = (total + chunk - 1) / chunk;
  // Unpadded planes are copied too when tasks read whole images of 192 pixels or more: read
  // in place, each depth step starts another channel's plane, more streams than the
  // hardware prefetcher follows, and the first pass waits on memory (1x1 96->32 @28: 8.0 ->
  // 7.5 ms). Groups of small images are read in place (a copy cost 1x1 128->64 @7 30%).
  const bool padded = input.pad_height > 0 || input.pad_width > 0 || pixels >= 192;
  const std::int64_t image_stride = input.channels * offsets.plane;  // of a padded image
  parallel_for(tasks, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<std::int64_t> input_offsets(static_cast<std::size_t>(chunk));
    for (std::int64_t task = begin; task < end; ++task) {
      const std::int64_t first = task * chunk, count = std::min(chunk, total - first);
      // The images this task reads, padded into its scratch (they stay in L2 for the GEMM).
      const std::int64_t first_image = first / pixels, images = (first + count - 1) / pixels - first_image + 1;
      const T* source = input.data;
      std::int64_t source_image = 0;  // the image source's first image is
      if (padded) {
        T* copy = scratch<T>(3, static_cast<std::size_t>(images * image_stride));
        copy_padded(input.data + first_image * input.channels * input.height * input.width, images * input.channels,
                    input.height, input.width, input.pad_height, input.pad_width, copy);
        source = copy, source_image = first_image;
      }
      for (std::int64_t i = 0, n = first_image, k = first % pixels; i < count; ++i) {  // no division per position
        input_offsets[static_cast<std::size_t>(i)] =
            (n - source_image) * image_stride + offsets.pixel_offsets[static_cast<std::size_t>(k)];
        if (++k == pixels) k = 0, ++n;
      }
      T* result = scratch<T>(2, static_cast<std::size_t>(round_up(count, mr) * columns));  // [count, columns]
      multiply_gathered(kernel, source, input_offsets.data(), count, offsets.tap_offsets, packed_weight.data, columns,
                        result);
      // Image by image, in runs of positions whose piece of the result (a few KiB) stays in
      // L1 while every output channel reads its column.
      constexpr std::int64_t run = 32;
      for (std::int64_t i0 = 0; i0 < count;) {
        const std::int64_t n = (first + i0) / pixels, k0 = (first + i0) % pixels;
        const std::int64_t i1 = std::min({count, i0 + run, i0 + pixels - k0});
        for (std::int64_t o = 0; o < outputs; ++o) {
          T* destination = out + (n * outputs + o) * pixels + k0 - i0;
          const T* source = result + o;
          const T offset = bias ? bias[o] : T(0);
          for (std::int64_t i = i0; i < i1; ++i) destination[i] = source[i * columns] + offset;
        }
        i0 = i1;
      }
    }
  });
}

}  // namespace

bool shifted_convolution_suits(std::int64_t outputs, std::int64_t depth) {
  return outputs >= gemm_detail::active_microkernel<float>().nr / 2 && depth >= 64;
}


template <class T>
void correlate_shifted(const UnpaddedPlanes<T>& planes, const KernelWindow& window, std::int64_t out_height,
                       std::int64_t out_width, std::int64_t outputs, const T* weight, const T* bias, T* out) {
  const PaddedPlanes<T> padded{planes.data, planes.batch, planes.channels, planes.height + 2 * planes.pad_height,
                               planes.width + 2 * planes.pad_width};
  correlate_gathered<T>(planes, make_offsets(padded, window, out_height, out_width), outputs, weight, bias, out);
}

// Input pixel (s·j + py, s·i + px) of a strided convolution receives tap (kh, kw) only
// where s divides py + P - kh·d (and likewise across), from output pixel
// (j + (py + P - kh·d)/s, i + ...). So each of the s² phases (py, px) is a stride-1
// correlation of the padded dY with a sub-kernel, giving every s-th input pixel: no tap
// multiplies a structural zero, and no input pixel sums in a data-dependent order. A task
// computes every phase of a group of images, then writes the group's input-gradient
// planes row by row, interleaving the phases: each plane is written once, in order
// (phase by phase, every cache line of it would be fetched and written back s² times).
template <class T>
void input_gradient_by_phases(const PaddedPlanes<T>& gradient, std::int64_t pad_height, std::int64_t pad_width,
                              const KernelWindow& window, std::int64_t padding, std::int64_t in_height,
                              std::int64_t in_width, std::int64_t in_channels, const T* weight, T* input_gradient) {
  const auto& kernel = gemm_detail::active_microkernel<T>();
  const std::int64_t mr = kernel.mr, nr = kernel.nr, columns = round_up(in_channels, nr);
  const std::int64_t s = window.stride, d = window.dilation, area = window.height * window.width;
  const std::int64_t plane = gradient.height * gradient.width, image_stride = gradient.channels * plane;
  const std::int64_t out_channels = gradient.channels;
  struct Phase {
    std::int64_t rows = 0, columns = 0;          // its pixel grid: input pixels (py + s·j, px + s·i)
    std::vector<std::int64_t> pixel_offsets;     // [rows·columns]: j·W + i in the padded dY
    std::vector<std::int64_t> tap_offsets;       // per (co, kh, kw) of this phase
    std::int64_t packed_weight = 0;              // where its B panels start in `packed`
  };
  auto phase_taps = [&](std::int64_t phase, std::int64_t kernel_size, std::vector<std::int64_t>& taps,
                        std::vector<std::int64_t>& shifts) {
    for (std::int64_t k = 0; k < kernel_size; ++k) {
      const std::int64_t numerator = phase + padding - k * d;
      if (((numerator % s) + s) % s == 0) taps.push_back(k), shifts.push_back(numerator / s);
    }
  };
  std::vector<Phase> phases(static_cast<std::size_t>(s * s));
  std::vector<std::vector<T>> phase_weights(phases.size());  // [in_channels, taps] each
  std::int64_t packed_size = 0;
  for (std::int64_t py = 0; py < s; ++py)
    for (std::int64_t px = 0; px < s; ++px) {
      Phase& phase = phases[static_cast<std::size_t>(py * s + px)];
      phase.rows = py < in_height ? (in_height - py + s - 1) / s : 0;
      phase.columns = px < in_width ? (in_width - px + s - 1) / s : 0;
      for (std::int64_t j = 0; j < phase.rows; ++j)
        for (std::int64_t i = 0; i < phase.columns; ++i) phase.pixel_offsets.push_back(j * gradient.width + i);
      std::vector<std::int64_t> kernel_rows, kernel_columns, row_shifts, column_shifts;
      phase_taps(py, window.height, kernel_rows, row_shifts);
      phase_taps(px, window.width, kernel_columns, column_shifts);
      std::vector<std::int64_t> weight_offsets;  // of W[co, ·, kh, kw], per tap of this phase
      for (std::int64_t co = 0; co < out_channels; ++co)
        for (std::size_t a = 0; a < kernel_rows.size(); ++a)
          for (std::size_t b = 0; b < kernel_columns.size(); ++b) {
            weight_offsets.push_back(co * in_channels * area + kernel_rows[a] * window.width + kernel_columns[b]);
            phase.tap_offsets.push_back(co * plane + (row_shifts[a] + pad_height) * gradient.width + column_shifts[b] +
                                        pad_width);
          }
      const std::int64_t taps = static_cast<std::int64_t>(weight_offsets.size());
      std::vector<T>& phase_weight = phase_weights[static_cast<std::size_t>(py * s + px)];
      phase_weight.resize(static_cast<std::size_t>(in_channels * taps));
      for (std::int64_t ci = 0; ci < in_channels; ++ci)
        for (std::int64_t t = 0; t < taps; ++t)
          phase_weight[static_cast<std::size_t>(ci * taps + t)] = weight[weight_offsets[static_cast<std::size_t>(t)] + ci * area];
      phase.packed_weight = packed_size;
      packed_size += columns * taps;
    }
  AlignedBuffer<T> packed(static_cast<std::size_t>(std::max<std::int64_t>(packed_size, 1)));
  for (std::size_t p = 0; p < phases.size(); ++p)
    pack_weight_panels(phase_weights[p].data(), in_channels, static_cast<std::int64_t>(phases[p].tap_offsets.size()), nr,
                       packed.data + phases[p].packed_weight);

  // Groups of images with at least 32 row tiles of positions in their smallest phase (tiles
  // of small images run across images), and at least two tasks per thread.
  std::int64_t smallest_phase = in_height * in_width;
  for (const Phase& phase : phases)
    if (phase.rows * phase.columns > 0) smallest_phase = std::min(smallest_phase, phase.rows * phase.columns);
  const std::int64_t threads = std::max(1, num_threads());
  const std::int64_t group = std::clamp<std::int64_t>((32 * mr + smallest_phase - 1) / smallest_phase, 1,
                                                      (gradient.batch + 2 * threads - 1) / (2 * threads));
  const std::int64_t tasks = (gradient.batch + group - 1) / group;
  parallel_for(tasks, 1, [&](std::int64_t begin, std::int64_t end) {
    std::vector<std::int64_t> input_offsets;
    std::vector<const T*> results(phases.size());
    for (std::int64_t task = begin; task < end; ++task) {
      const std::int64_t first = task * group, images = std::min(group, gradient.batch - first);
      std::int64_t result_size = 0;
      for (const Phase& phase : phases) result_size += round_up(images * phase.rows * phase.columns, mr) * columns;
      T* result = scratch<T>(2, static_cast<std::size_t>(result_size));
      for (std::size_t p = 0; p < phases.size(); ++p) {
        const Phase& phase = phases[p];
        const std::int64_t pixels = phase.rows * phase.columns, count = images * pixels;
        results[p] = phase.tap_offsets.empty() ? nullptr : result;
        if (count == 0 || phase.tap_offsets.empty()) continue;  // no pixels, or pixels no tap reaches (zeros)
        input_offsets.resize(static_cast<std::size_t>(count));
        for (std::int64_t n = 0; n < images; ++n)
          for (std::int64_t k = 0; k < pixels; ++k)
            input_offsets[static_cast<std::size_t>(n * pixels + k)] =
                (first + n) * image_stride + phase.pixel_offsets[static_cast<std::size_t>(k)];
        multiply_gathered(kernel, gradient.data, input_offsets.data(), count, phase.tap_offsets,
                          packed.data + phase.packed_weight, columns, result);
        result += round_up(count, mr) * columns;
      }
      // Row y of a plane takes pixel x from phase (y % s, x % s), position (y / s, x / s):
      // channels in blocks of a cache line of the results, each plane row written in order.
      constexpr std::int64_t block = 16;
      for (std::int64_t n = 0; n < images; ++n)
        for (std::int64_t c0 = 0; c0 < in_channels; c0 += block) {
          const std::int64_t c1 = std::min(in_channels, c0 + block);
          for (std::int64_t y = 0; y < in_height; ++y) {
            const std::int64_t py = y % s, j = y / s;
            for (std::int64_t x = 0; x < in_width; ++x) {
              const std::size_t p = static_cast<std::size_t>(py * s + x % s);
              const Phase& phase = phases[p];
              T* destination = input_gradient + ((first + n) * in_channels * in_height + y) * in_width + x;
              if (!results[p]) {
                for (std::int64_t c = c0; c < c1; ++c) destination[c * in_height * in_width] = T(0);
                continue;
              }
              const T* source = results[p] + ((n * phase.rows + j) * phase.columns + x / s) * columns;
              for (std::int64_t c = c0; c < c1; ++c) destination[c * in_height * in_width] = source[c];
            }
          }
        }
    }
  });
}

// dWᵀ[tap, o] = Σ_n Σ_pixel planes_n(pixel, tap) · dY_n[o, pixel]: A is the planes gathered
// by tap rows (each row a run along the pixels), B is dYᵀ, packed for a group of images at
// a time (in parallel, once, and shared by every task). Tasks split the taps; each runs the
// group's images and pixel blocks in order, so the sums do not depend on the thread count.
template <class T>
void weight_gradient_shifted(const PaddedPlanes<T>& planes, const KernelWindow& window, std::int64_t out_height,
                             std::int64_t out_width, std::int64_t outputs, const T* output_gradient,
                             T* weight_gradient) {
  const auto& kernel = gemm_detail::active_microkernel<T>();
  const std::int64_t mr = kernel.mr, nr = kernel.nr;
  const Offsets offsets = make_offsets(planes, window, out_height, out_width);
  const std::int64_t taps = static_cast<std::int64_t>(offsets.tap_offsets.size());
  const std::int64_t pixels = out_height * out_width;
  const std::int64_t columns = round_up(outputs, nr), panels = columns / nr;
  const std::int64_t step = depth_step(pixels, kernel.kc);
  std::vector<T> transposed(static_cast<std::size_t>(round_up(taps, mr) * columns));  // [taps, columns]

  // Each task owns a run of C tiles (row tile, column panel) and sums every image into
  // them in order. Split by tiles and panels both: a 1x1 kernel on 32 channels has only
  // 6 row tiles, which 4 tasks cut 2 + 2 + 2 + 0 (one thread did twice the other's work).
  const std::int64_t tiles = (taps + mr - 1) / mr, items = tiles * panels;
  const std::int64_t tasks = std::min<std::int64_t>(items, 2 * std::max(1, num_threads()));
  const std::int64_t items_per_task = (items + tasks - 1) / tasks;
  const std::int64_t per_image = columns * pixels;  // packed dYᵀ: panel j of image n at (n·panels + j)·pixels·nr
  const std::int64_t group = std::clamp<std::int64_t>((std::int64_t{1} << 21) / (per_image * sizeof(T)), 1, planes.batch);
  AlignedBuffer<T> packed(static_cast<std::size_t>(group * per_image));
  for (std::int64_t first = 0; first < planes.batch; first += group) {
    const std::int64_t count = std::min(group, planes.batch - first);
    parallel_for(count * panels, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t item = begin; item < end; ++item) {
        const std::int64_t n = first + item / panels, j = item % panels;
        T* panel = packed.data + item * pixels * nr;
        for (std::int64_t c = 0; c < nr; ++c) {
          const std::int64_t o = j * nr + c;
          const T* dy = output_gradient + (n * outputs + o) * pixels;
          for (std::int64_t pixel = 0; pixel < pixels; ++pixel) panel[pixel * nr + c] = o < outputs ? dy[pixel] : T(0);
        }
      }
    });
    parallel_for(tasks, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t task = begin; task < end; ++task) {
        const std::int64_t first_item = task * items_per_task, last_item = std::min(items, first_item + items_per_task);
        for (std::int64_t n = first; n < first + count; ++n) {
          const T* image = planes.data + n * planes.channels * offsets.plane;
          for (std::int64_t p0 = 0; p0 < pixels; p0 += step) {
            const std::int64_t depths = std::min(step, pixels - p0);
            const T beta = n == 0 && p0 == 0 ? T(0) : T(1);
            for (std::int64_t item = first_item; item < last_item; ++item) {
              const std::int64_t j = item % panels, tile = item / panels;
              const std::int64_t tap = tile * mr, rows = std::min(mr, taps - tap);
              std::int64_t row_offsets[max_rows];
              tile_offsets(offsets.tap_offsets.data(), tap, rows, mr, row_offsets);
              kernel.run_gathered(depths, image, offsets.pixel_offsets.data() + p0, row_offsets,
                                  packed.data + (((n - first) * panels + j) * pixels + p0) * nr,
                                  transposed.data() + tap * columns + j * nr, columns, T(1), beta, rows, nr);
            }
          }
        }
      }
    });
  }
  for (std::int64_t o = 0; o < outputs; ++o)
    for (std::int64_t tap = 0; tap < taps; ++tap)
      weight_gradient[o * taps + tap] = transposed[static_cast<std::size_t>(tap * columns + o)];
}

#define DDPM_INSTANTIATE_SHIFTED_CONVOLUTION(T)                                                                      \
  template void correlate_shifted<T>(const UnpaddedPlanes<T>&, const KernelWindow&, std::int64_t, std::int64_t,       \
                                     std::int64_t, const T*, const T*, T*);                                            \
  template void weight_gradient_shifted<T>(const PaddedPlanes<T>&, const KernelWindow&, std::int64_t, std::int64_t,   \
                                           std::int64_t, const T*, T*);                                               \
  template void input_gradient_by_phases<T>(const PaddedPlanes<T>&, std::int64_t, std::int64_t, const KernelWindow&,  \
                                            std::int64_t, std::int64_t, std::int64_t, std::int64_t, const T*, T*);
DDPM_INSTANTIATE_SHIFTED_CONVOLUTION(float)
DDPM_INSTANTIATE_SHIFTED_CONVOLUTION(double)
#undef DDPM_INSTANTIATE_SHIFTED_CONVOLUTION

}  // namespace ddpm::convolution_detail
