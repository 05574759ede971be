#pragma once
// What GroupNorm's forward and backward share: the layout checks, how groups are batched
// into tasks, and the walk over a group. Each group (channels_per_group rows of H·W values,
// one after another) is walked as one row of vectors across its channel boundaries: a
// vector that straddles two channels takes its coefficients blended by lane, so a 7 x 7
// channel costs 49/8 vectors with no scalar tail. Internal to tensor/group_norm/ and to the
// convolutions that apply GroupNorm to their input (tensor/convolution/fusion.hpp).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include <xsimd/xsimd.hpp>

#include "tensor/tensor.hpp"

namespace ddpm::group_norm_detail {

// Groups per task: small groups (a 7 x 7 image's 8 channels are 392 values) are batched
// until a task has some 16K values, so scheduling does not cost more than the work.
inline std::int64_t groups_per_task(std::int64_t group_size) { return std::max<std::int64_t>(1, (1 << 14) / group_size); }

struct Layout {
  std::int64_t batch, channels, groups, channels_per_group, area;
};

inline Layout check_inputs(const char* op, const Tensor& input, std::int64_t groups, const Tensor& gamma, const Tensor& beta) {
  check(input.rank() == 4, op, "input must be [N, C, H, W], got ", shape_string(input.shape()));
  const std::int64_t channels = input.size(1);
  check(groups > 0 && channels % groups == 0, op, "channels (", channels, ") must be a multiple of groups (", groups, ")");
  check(gamma.shape() == Shape{channels} && beta.shape() == Shape{channels}, op, "gamma and beta must be [", channels,
        "], got ", shape_string(gamma.shape()), " and ", shape_string(beta.shape()));
  check(gamma.dtype() == input.dtype() && beta.dtype() == input.dtype(), op, "gamma, beta and input dtypes differ");
  return {input.size(0), channels, groups, channels / groups, input.size(2) * input.size(3)};
}

// Σ f(x[i]) in vector lanes (a fixed order), returned in double. Four accumulators, so the
// adds do not wait on one another (one accumulator ran at a third of the load rate).
template <class T, class Function>
double sum_row(const T* x, std::int64_t count, Function&& function) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  Batch partial[4] = {Batch(T(0)), Batch(T(0)), Batch(T(0)), Batch(T(0))};
  std::int64_t i = 0;
  for (; i + 4 * width <= count; i += 4 * width)
    for (int k = 0; k < 4; ++k) partial[k] += function(Batch::load_unaligned(x + i + k * width));
  for (; i + width <= count; i += width) partial[0] += function(Batch::load_unaligned(x + i));
  const Batch accumulator = (partial[0] + partial[1]) + (partial[2] + partial[3]);
  alignas(64) T lanes[width];
  accumulator.store_aligned(lanes);
  double total = 0;
  for (T lane : lanes) total += lane;
  for (; i < count; ++i) total += function(x[i]);
  return total;
}

// The statistics of one (image, group), `size` values from `data`, and the negated
// coefficients of its `channels` channels, gamma and beta those channels' own.
template <class T>
void normalize_group(const T* data, std::int64_t size, double eps, std::int64_t channels, const T* gamma,
                     const T* beta, T* mean, T* inverse_std, T* minus_scale, T* minus_shift) {
  // Two passes (mean, then squared deviations) over data that stays in cache: more
  // accurate than E[x²] - E[x]², and summed in a fixed order.
  const double group_mean = sum_row(data, size, [](auto v) { return v; }) / static_cast<double>(size);
  const T centre = static_cast<T>(group_mean);
  const double squares = sum_row(data, size, [centre](auto v) { return (v - centre) * (v - centre); });
  const double group_inverse_std = 1.0 / std::sqrt(squares / static_cast<double>(size) + eps);
  *mean = static_cast<T>(group_mean);
  *inverse_std = static_cast<T>(group_inverse_std);
  for (std::int64_t c = 0; c < channels; ++c) {
    const double gamma_value = gamma[c], beta_value = beta[c];
    minus_scale[c] = static_cast<T>(-group_inverse_std * gamma_value);
    minus_shift[c] = static_cast<T>(group_mean * group_inverse_std * gamma_value - beta_value);
  }
}

// True in lanes `first` and after: where the next channel begins in a vector, or the
// lanes of an overlapping last vector not done before.
template <class T>
xsimd::batch_bool<T> lanes_from(std::int64_t first) {
  alignas(64) static constexpr T lane_index[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  static_assert(xsimd::batch<T>::size <= 16);
  return xsimd::batch<T>::load_aligned(lane_index) >= xsimd::batch<T>(static_cast<T>(first));
}

// One vector of a group's flat row (channels_per_group rows of H·W >= width values, one
// after another): where it starts, the channel of its first lane, the lane where the next
// channel begins (width if none), and the first lane not done by the vector before it.
// Vectors run across channel boundaries, so a 7 x 7 channel costs 49/8 vectors, not 7.
struct VectorSpan {
  std::int64_t start, channel, next_channel_lane, first_new_lane;
};

// Visits a group's vectors in order: from the row's start, the last one ending at the
// row's end (overlapping the one before when the row is not a whole number of vectors).
template <class T, class Visit>
void for_each_span(std::int64_t channels, std::int64_t area, Visit&& visit) {
  constexpr std::int64_t width = xsimd::batch<T>::size;
  const std::int64_t size = channels * area;
  std::int64_t start = 0, channel = 0, channel_end = area;
  for (; start + width <= size; start += width) {
    if (start >= channel_end) ++channel, channel_end += area;  // area >= width: one step at most
    visit(VectorSpan{start, channel, std::min(width, channel_end - start), 0});
  }
  // The last vector lies in the last channel, since area >= width.
  if (start < size) visit(VectorSpan{size - width, channels - 1, width, start - (size - width)});
}

// A per-channel coefficient as a vector for a span: channel's value, and the next
// channel's in the lanes from next_channel_lane on.
template <class T>
xsimd::batch<T> coefficient_for(const VectorSpan& span, const T* per_channel) {
  using Batch = xsimd::batch<T>;
  const Batch own(per_channel[span.channel]);
  if (span.next_channel_lane == static_cast<std::int64_t>(Batch::size)) return own;
  return xsimd::select(lanes_from<T>(span.next_channel_lane), Batch(per_channel[span.channel + 1]), own);
}

// Rows shorter than a vector (the smallest images) are copied into rows of `padded_area`
// (one vector) whose tails stay zero, so the group walk always sees rows of at least a
// vector; results are copied back with `unpad_rows`.
template <class T>
void pad_rows(const T* rows, std::int64_t count, std::int64_t area, std::int64_t padded_area, T* out) {
  for (std::int64_t row = 0; row < count; ++row) std::copy(rows + row * area, rows + (row + 1) * area, out + row * padded_area);
}

template <class T>
void unpad_rows(const T* padded, std::int64_t count, std::int64_t area, std::int64_t padded_area, T* out) {
  for (std::int64_t row = 0; row < count; ++row)
    std::copy(padded + row * padded_area, padded + row * padded_area + area, out + row * area);
}

}  // namespace ddpm::group_norm_detail
