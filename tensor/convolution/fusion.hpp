#pragma once
// What a forward convolution may do on the way in and on the way out besides correlating:
// the work of the elementwise ops a U-Net block runs around it, so that in inference their
// tensors are never written out and read back. Each is bit for bit the separate op: the
// same formula per element, rounded in the same places. The Winograd path folds them into
// its own passes; the others run the separate ops (convolution.cpp). Internal.
#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "tensor/group_norm/group_walk.hpp"
#include "tensor/vector_sigmoid.hpp"

namespace ddpm::convolution_detail {

// On the way in, one of:
// - SiLU(GroupNorm(input)) with GroupNorm's affine parameters [Ci], the statistics computed
//   from the input as group_norm computes them (gamma not null);
// - nearest-neighbour upsampling by 2 (upsample): the input holds planes of half the
//   convolution's height and width, and each value stands for a 2 x 2 block.
// By default, the input as it is.
template <class T>
struct InputFusion {
  const T* gamma = nullptr;
  const T* beta = nullptr;
  std::int64_t groups = 1;
  double eps = 0;
  bool upsample = false;
  bool normalizes() const { return gamma != nullptr; }
  // The values an input image holds, for a convolution input of height x width per channel.
  std::int64_t image_values(std::int64_t channels, std::int64_t height, std::int64_t width) const {
    return upsample ? channels * (height / 2) * (width / 2) : channels * height * width;
  }
};

// The negated coefficients of one image's channels [channels] under the activation:
// group_norm's statistics of each (image, group) in its order, from the image's NCHW planes.
template <class T>
void activation_coefficients(const InputFusion<T>& activation, const T* image, std::int64_t channels,
                             std::int64_t area, T* minus_scale, T* minus_shift) {
  const std::int64_t channels_per_group = channels / activation.groups, group_size = channels_per_group * area;
  for (std::int64_t group = 0; group < activation.groups; ++group) {
    const std::int64_t first = group * channels_per_group;
    T mean, inverse_std;
    group_norm_detail::normalize_group(image + group * group_size, group_size, activation.eps, channels_per_group,
                                       activation.gamma + first, activation.beta + first, &mean, &inverse_std,
                                       minus_scale + first, minus_shift + first);
  }
}

// `count` channels-last pixels (each `channel_stride` values, the first channels of which
// are real) through SiLU(x·scale + shift), with one image's negated coefficients padded
// with zeros to whole vectors of the compiler's width. The formula is GroupNorm's
// (silu_of_affine) on the same vectors, so the values equal group_norm's output exactly.
template <class T>
void activate_pixels(T* pixels, std::int64_t count, std::int64_t channel_stride, const T* minus_scale,
                     const T* minus_shift) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  for (std::int64_t p = 0; p < count; ++p) {
    T* pixel = pixels + p * channel_stride;
    std::int64_t c = 0;
    for (; c + width <= channel_stride; c += width)
      silu_of_affine(Batch::load_unaligned(pixel + c), Batch::load_unaligned(minus_scale + c),
                     Batch::load_unaligned(minus_shift + c))
          .store_unaligned(pixel + c);
    if (c < channel_stride) {  // a stride narrower than the compiler's vectors (tests pair such widths)
      alignas(64) T lanes[width] = {};
      std::copy(pixel + c, pixel + channel_stride, lanes);
      silu_of_affine(Batch::load_aligned(lanes), Batch::load_unaligned(minus_scale + c),
                     Batch::load_unaligned(minus_shift + c))
          .store_aligned(lanes);
      std::copy(lanes, lanes + (channel_stride - c), pixel + c);
    }
  }
}

// On the way out: a bias per image and output channel, image_bias [batch, channels], added
// to a finished output [batch, channels, area] in place, for the paths that do not fold it in.
template <class T>
void add_image_bias(const T* image_bias, std::int64_t batch, std::int64_t channels, std::int64_t area, T* out) {
  for (std::int64_t plane = 0; plane < batch * channels; ++plane) {
    const T offset = image_bias[plane];
    for (std::int64_t i = 0; i < area; ++i) out[plane * area + i] += offset;
  }
}

}  // namespace ddpm::convolution_detail
