#include "tensor/group_norm.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/parallel.hpp"
#include "tensor/vector_sigmoid.hpp"

namespace ddpm {
namespace {

// Groups per task: small groups (a 7 x 7 image's 8 channels are 392 values) are batched
// until a task has some 16K values, so scheduling does not cost more than the work.
std::int64_t groups_per_task(std::int64_t group_size) { return std::max<std::int64_t>(1, (1 << 14) / group_size); }

struct Layout {
  std::int64_t batch, channels, groups, channels_per_group, area;
};

Layout check_inputs(const char* op, const Tensor& input, std::int64_t groups, const Tensor& gamma, const Tensor& beta) {
  check(input.rank() == 4, op, "input must be [N, C, H, W], got ", shape_string(input.shape()));
  const std::int64_t channels = input.size(1);
  check(groups > 0 && channels % groups == 0, op, "channels (", channels, ") must be a multiple of groups (", groups, ")");
  check(gamma.shape() == Shape{channels} && beta.shape() == Shape{channels}, op, "gamma and beta must be [", channels,
        "], got ", shape_string(gamma.shape()), " and ", shape_string(beta.shape()));
  check(gamma.dtype() == input.dtype() && beta.dtype() == input.dtype(), op, "gamma, beta and input dtypes differ");
  return {input.size(0), channels, groups, channels / groups, input.size(2) * input.size(3)};
}

// Σ f(x[i]) in vector lanes (a fixed order), returned in double.
template <class T, class Function>
double sum_row(const T* x, std::int64_t count, Function&& function) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  Batch accumulator(T(0));
  std::int64_t i = 0;
  for (; i + width <= count; i += width) accumulator += function(Batch::load_unaligned(x + i));
  alignas(64) T lanes[width];
  accumulator.store_aligned(lanes);
  double total = 0;
  for (T lane : lanes) total += lane;
  for (; i < count; ++i) total += function(x[i]);
  return total;
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

// out = f(x·scale_c + shift_c) over a group's row, f = identity or SiLU, given the
// per-channel coefficients negated (SiLU's sigmoid takes -z; z = -(-z) is exact).
template <bool ApplySilu, class T>
void affine_group(std::int64_t channels, std::int64_t area, const T* minus_scale, const T* minus_shift, const T* x,
                  T* out) {
  using Batch = xsimd::batch<T>;
  for_each_span<T>(channels, area, [&](const VectorSpan& span) {
    const Batch minus_z = xsimd::fma(Batch::load_unaligned(x + span.start), coefficient_for(span, minus_scale),
                                     coefficient_for(span, minus_shift));
    if constexpr (ApplySilu) (-minus_z * sigmoid_of_negated(minus_z)).store_unaligned(out + span.start);
    else (-minus_z).store_unaligned(out + span.start);
  });
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

// A group of one image in the backward: statistics and per-channel coefficients.
template <class T>
struct GroupCoefficients {
  T mean, inverse_std;
  std::int64_t channels, area;
  const T* minus_scale;  // [channels] -inverse_std γ: -z = (x - mean) (-inverse_std γ) - β
  const T* minus_beta;   // [channels]
  const T* dz_scale;     // [channels] inverse_std γ, for pass 2
};

// Pass 1 of the backward over a group: dz, the gradient at the affine output (through
// SiLU's derivative when applied), into `dz`; Σ dz and Σ dz·x̂ per channel into the sums.
template <bool ApplySilu, class T>
void output_gradient_group(const GroupCoefficients<T>& group, const T* x, const T* dy, T* dz, double* channel_dz,
                           double* channel_dz_xhat) {
  using Batch = xsimd::batch<T>;
  const Batch mean(group.mean), inverse_std(group.inverse_std), one(T(1)), zero(T(0));
  Batch lane_dz = zero, lane_dz_xhat = zero;
  std::int64_t current = 0;
  auto finish_channel = [&] {
    // Each lane holds H·W / width of a channel's values: summed in T, then carried in double.
    channel_dz[current] = xsimd::hadd(lane_dz);
    channel_dz_xhat[current] = xsimd::hadd(lane_dz_xhat);
    lane_dz = lane_dz_xhat = zero;
    ++current;
  };
  for_each_span<T>(group.channels, group.area, [&](const VectorSpan& span) {
    const Batch centred = Batch::load_unaligned(x + span.start) - mean, g = Batch::load_unaligned(dy + span.start);
    Batch d = g;
    if constexpr (ApplySilu) {
      // SiLU'(z) = s (1 + z (1 - s)), s = sigmoid(z).
      const Batch minus_z =
          xsimd::fma(centred, coefficient_for(span, group.minus_scale), coefficient_for(span, group.minus_beta));
      const Batch s = sigmoid_of_negated(minus_z);
      d = g * s * xsimd::fnma(minus_z, one - s, one);
    }
    d.store_unaligned(dz + span.start);
    if (span.first_new_lane > 0) d = xsimd::select(lanes_from<T>(span.first_new_lane), d, zero);
    const Batch d_xhat = d * (centred * inverse_std);
    if (span.next_channel_lane == static_cast<std::int64_t>(Batch::size)) {
      lane_dz += d;
      lane_dz_xhat += d_xhat;
    } else {
      const auto next = lanes_from<T>(span.next_channel_lane);
      lane_dz += xsimd::select(next, zero, d);
      lane_dz_xhat += xsimd::select(next, zero, d_xhat);
      finish_channel();
      lane_dz = xsimd::select(next, d, zero);
      lane_dz_xhat = xsimd::select(next, d_xhat, zero);
    }
    if (span.start + static_cast<std::int64_t>(Batch::size) == (current + 1) * group.area) finish_channel();
  });
}

// Pass 2 over a group: dx = inverse_std (γ dz - mean(γ dz) - x̂ mean(γ dz x̂)), as
// dz (inverse_std γ) - (x - mean) (inverse_std² mean(γ dz x̂)) - inverse_std mean(γ dz).
template <class T>
void input_gradient_group(const GroupCoefficients<T>& group, T mean_dz_gamma, T mean_dz_gamma_xhat, const T* x,
                          const T* dz, T* dx) {
  using Batch = xsimd::batch<T>;
  const Batch mean(group.mean);
  const Batch centred_scale(group.inverse_std * group.inverse_std * mean_dz_gamma_xhat);
  const Batch minus_shift(-group.inverse_std * mean_dz_gamma);
  for_each_span<T>(group.channels, group.area, [&](const VectorSpan& span) {
    const Batch centred = Batch::load_unaligned(x + span.start) - mean;
    xsimd::fma(Batch::load_unaligned(dz + span.start), coefficient_for(span, group.dz_scale),
               xsimd::fnma(centred, centred_scale, minus_shift))
        .store_unaligned(dx + span.start);
  });
}

}  // namespace

GroupNormOutput group_norm(const Tensor& input, std::int64_t groups, const Tensor& gamma, const Tensor& beta,
                           double eps, bool apply_silu) {
  const Layout layout = check_inputs("group_norm", input, groups, gamma, beta);
  const Tensor x = input.contiguous(), gamma_values = gamma.contiguous(), beta_values = beta.contiguous();
  GroupNormOutput result{Tensor::empty(input.shape(), input.dtype()), Tensor::empty({layout.batch, groups}, input.dtype()),
                         Tensor::empty({layout.batch, groups}, input.dtype())};
  dispatch_floating(input.dtype(), "group_norm", [&]<class T>() {
    const T* in = x.data<T>();
    const T* gamma_data = gamma_values.data<T>();
    const T* beta_data = beta_values.data<T>();
    T* out = result.output.data<T>();
    T* mean_data = result.mean.data<T>();
    T* inverse_std_data = result.inverse_std.data<T>();
    const std::int64_t group_size = layout.channels_per_group * layout.area;
    const std::int64_t row_area = std::max<std::int64_t>(layout.area, xsimd::batch<T>::size);
    const bool padded_rows = row_area != layout.area;
    const std::int64_t padded_size = layout.channels_per_group * row_area;
    parallel_for(layout.batch * groups, groups_per_task(group_size), [&](std::int64_t begin, std::int64_t end) {
      thread_local std::vector<T> coefficients, padded;
      coefficients.resize(static_cast<std::size_t>(2 * layout.channels_per_group));
      if (padded_rows) padded.assign(static_cast<std::size_t>(2 * padded_size), T(0));
      for (std::int64_t task = begin; task < end; ++task) {
        const T* data = in + task * group_size;
        // Two passes (mean, then squared deviations) over data that stays in cache:
        // more accurate than E[x²] - E[x]², and summed in a fixed order.
        const double group_mean = sum_row(data, group_size, [](auto v) { return v; }) / static_cast<double>(group_size);
        const T centre = static_cast<T>(group_mean);
        const double squares = sum_row(data, group_size, [centre](auto v) { return (v - centre) * (v - centre); });
        const double inverse_std = 1.0 / std::sqrt(squares / static_cast<double>(group_size) + eps);
        mean_data[task] = static_cast<T>(group_mean);
        inverse_std_data[task] = static_cast<T>(inverse_std);
        const std::int64_t first_channel = task % groups * layout.channels_per_group;
        T* minus_scale = coefficients.data();
        T* minus_shift = minus_scale + layout.channels_per_group;
        for (std::int64_t c = 0; c < layout.channels_per_group; ++c) {
          const double gamma_value = gamma_data[first_channel + c], beta_value = beta_data[first_channel + c];
          minus_scale[c] = static_cast<T>(-inverse_std * gamma_value);
          minus_shift[c] = static_cast<T>(group_mean * inverse_std * gamma_value - beta_value);
        }
        const T* x_rows = data;
        T* out_rows = out + task * group_size;
        if (padded_rows) {
          pad_rows(data, layout.channels_per_group, layout.area, row_area, padded.data());
          x_rows = padded.data();
          out_rows = padded.data() + padded_size;
        }
        if (apply_silu) affine_group<true>(layout.channels_per_group, row_area, minus_scale, minus_shift, x_rows, out_rows);
        else affine_group<false>(layout.channels_per_group, row_area, minus_scale, minus_shift, x_rows, out_rows);
        if (padded_rows) unpad_rows(out_rows, layout.channels_per_group, layout.area, row_area, out + task * group_size);
      }
    });
  });
  return result;
}

GroupNormGradients group_norm_backward(const Tensor& output_gradient, const Tensor& input, const Tensor& mean,
                                       const Tensor& inverse_std, std::int64_t groups, const Tensor& gamma,
                                       const Tensor& beta, bool apply_silu) {
  const Layout layout = check_inputs("group_norm_backward", input, groups, gamma, beta);
  check(output_gradient.shape() == input.shape(), "group_norm_backward", "output gradient shape ",
        shape_string(output_gradient.shape()), " differs from input shape ", shape_string(input.shape()));
  const Tensor x = input.contiguous(), dy = output_gradient.contiguous();
  const Tensor gamma_values = gamma.contiguous(), beta_values = beta.contiguous();
  const Tensor mean_values = mean.contiguous(), inverse_std_values = inverse_std.contiguous();
  GroupNormGradients gradients{Tensor::empty(input.shape(), input.dtype()), Tensor::empty({layout.channels}, input.dtype()),
                               Tensor::empty({layout.channels}, input.dtype())};
  dispatch_floating(input.dtype(), "group_norm_backward", [&]<class T>() {
    const T* in = x.data<T>();
    const T* upstream = dy.data<T>();
    const T* gamma_data = gamma_values.data<T>();
    const T* beta_data = beta_values.data<T>();
    const T* mean_data = mean_values.data<T>();
    const T* inverse_std_data = inverse_std_values.data<T>();
    T* dx = gradients.input.data<T>();
    // Padded rows (see pad_rows) have dy = 0 in their tails, so dz = 0 there and
    // the sums are unchanged.
    const std::int64_t row_area = std::max<std::int64_t>(layout.area, xsimd::batch<T>::size);
    const bool padded_rows = row_area != layout.area;
    const std::int64_t padded_size = layout.channels_per_group * row_area;
    // Per (image, channel) sums of dz and dz·x̂, reduced over images in order afterwards.
    std::vector<double> sum_dz(layout.batch * layout.channels), sum_dz_xhat(layout.batch * layout.channels);
    const std::int64_t group_size = layout.channels_per_group * layout.area;
    parallel_for(layout.batch * groups, groups_per_task(group_size), [&](std::int64_t begin, std::int64_t end) {
      // dz (the gradient at the affine output) for one group, kept for pass 2; per-channel
      // coefficients; padded copies of x, dy and dx when rows are padded.
      thread_local std::vector<T> dz_buffer, coefficients, padded;
      dz_buffer.resize(static_cast<std::size_t>(padded_size));
      coefficients.resize(static_cast<std::size_t>(3 * layout.channels_per_group));
      if (padded_rows) padded.assign(static_cast<std::size_t>(3 * padded_size), T(0));
      for (std::int64_t task = begin; task < end; ++task) {
        const std::int64_t image = task / groups, first_channel = task % groups * layout.channels_per_group;
        T* minus_scale = coefficients.data();
        T* minus_beta = minus_scale + layout.channels_per_group;
        T* dz_scale = minus_beta + layout.channels_per_group;
        for (std::int64_t c = 0; c < layout.channels_per_group; ++c) {
          dz_scale[c] = inverse_std_data[task] * gamma_data[first_channel + c];
          minus_scale[c] = -dz_scale[c];
          minus_beta[c] = -beta_data[first_channel + c];
        }
        const GroupCoefficients<T> group{mean_data[task], inverse_std_data[task], layout.channels_per_group, row_area,
                                         minus_scale, minus_beta, dz_scale};
        const T* x_rows = in + task * group_size;
        const T* dy_rows = upstream + task * group_size;
        T* dx_rows = dx + task * group_size;
        if (padded_rows) {
          pad_rows(x_rows, layout.channels_per_group, layout.area, row_area, padded.data());
          pad_rows(dy_rows, layout.channels_per_group, layout.area, row_area, padded.data() + padded_size);
          x_rows = padded.data();
          dy_rows = padded.data() + padded_size;
          dx_rows = padded.data() + 2 * padded_size;
        }
        double* channel_dz = sum_dz.data() + image * layout.channels + first_channel;
        double* channel_dz_xhat = sum_dz_xhat.data() + image * layout.channels + first_channel;
        if (apply_silu) output_gradient_group<true>(group, x_rows, dy_rows, dz_buffer.data(), channel_dz, channel_dz_xhat);
        else output_gradient_group<false>(group, x_rows, dy_rows, dz_buffer.data(), channel_dz, channel_dz_xhat);
        double group_dz_gamma = 0, group_dz_gamma_xhat = 0;
        for (std::int64_t c = 0; c < layout.channels_per_group; ++c) {
          group_dz_gamma += channel_dz[c] * gamma_data[first_channel + c];
          group_dz_gamma_xhat += channel_dz_xhat[c] * gamma_data[first_channel + c];
        }
        const T mean_dz_gamma = static_cast<T>(group_dz_gamma / static_cast<double>(group_size));
        const T mean_dz_gamma_xhat = static_cast<T>(group_dz_gamma_xhat / static_cast<double>(group_size));
        input_gradient_group(group, mean_dz_gamma, mean_dz_gamma_xhat, x_rows, dz_buffer.data(), dx_rows);
        if (padded_rows) unpad_rows(dx_rows, layout.channels_per_group, layout.area, row_area, dx + task * group_size);
      }
    });
    T* d_gamma = gradients.gamma.data<T>();
    T* d_beta = gradients.beta.data<T>();
    for (std::int64_t channel = 0; channel < layout.channels; ++channel) {
      double gamma_total = 0, beta_total = 0;
      for (std::int64_t image = 0; image < layout.batch; ++image) {
        gamma_total += sum_dz_xhat[image * layout.channels + channel];
        beta_total += sum_dz[image * layout.channels + channel];
      }
      d_gamma[channel] = static_cast<T>(gamma_total);
      d_beta[channel] = static_cast<T>(beta_total);
    }
  });
  return gradients;
}

// ---- references ----

namespace {
// Mean and biased variance of values[begin, begin + size), two plain passes in double.
std::pair<double, double> reference_statistics(const std::vector<double>& values, std::int64_t begin, std::int64_t size) {
  double m = 0, v = 0;
  for (std::int64_t i = 0; i < size; ++i) m += values[begin + i];
  m /= static_cast<double>(size);
  for (std::int64_t i = 0; i < size; ++i) v += (values[begin + i] - m) * (values[begin + i] - m);
  return {m, v / static_cast<double>(size)};
}
}  // namespace

GroupNormOutput group_norm_reference(const Tensor& input, std::int64_t groups, const Tensor& gamma,
                                     const Tensor& beta, double eps, bool apply_silu) {
  const Layout layout = check_inputs("group_norm", input, groups, gamma, beta);
  const auto x = input.to_vector<double>(), g = gamma.to_vector<double>(), b = beta.to_vector<double>();
  std::vector<double> y(x.size()), means(layout.batch * groups), inverse_stds(layout.batch * groups);
  const std::int64_t size = layout.channels_per_group * layout.area;
  for (std::int64_t task = 0; task < layout.batch * groups; ++task) {
    const auto [m, v] = reference_statistics(x, task * size, size);
    const double inverse_std = 1.0 / std::sqrt(v + eps);
    means[task] = m;
    inverse_stds[task] = inverse_std;
    for (std::int64_t i = 0; i < size; ++i) {
      const std::int64_t channel = task % groups * layout.channels_per_group + i / layout.area;
      const double z = (x[task * size + i] - m) * inverse_std * g[channel] + b[channel];
      y[task * size + i] = apply_silu ? z / (1.0 + std::exp(-z)) : z;
    }
  }
  return {Tensor::from_vector(y, input.shape()).to(input.dtype()),
          Tensor::from_vector(means, {layout.batch, groups}).to(input.dtype()),
          Tensor::from_vector(inverse_stds, {layout.batch, groups}).to(input.dtype())};
}

GroupNormGradients group_norm_backward_reference(const Tensor& output_gradient, const Tensor& input,
                                                 std::int64_t groups, const Tensor& gamma, const Tensor& beta,
                                                 double eps, bool apply_silu) {
  // The textbook formula, written independently of the fused kernel: with x̂ normalised,
  // dz the gradient at the affine output, N the group size,
  // dx = (1/σ) (γ dz - mean(γ dz) - x̂ mean(γ dz x̂)), dγ = Σ dz x̂, dβ = Σ dz.
  const Layout layout = check_inputs("group_norm_backward", input, groups, gamma, beta);
  const auto x = input.to_vector<double>(), dy = output_gradient.to_vector<double>();
  const auto g = gamma.to_vector<double>(), b = beta.to_vector<double>();
  std::vector<double> dx(x.size()), dg(layout.channels, 0.0), db(layout.channels, 0.0);
  const std::int64_t size = layout.channels_per_group * layout.area;
  for (std::int64_t task = 0; task < layout.batch * groups; ++task) {
    const auto [m, v] = reference_statistics(x, task * size, size);
    const double sigma = std::sqrt(v + eps);
    std::vector<double> xhat(size), dz_gamma(size);
    double mean_a = 0, mean_b = 0;
    for (std::int64_t i = 0; i < size; ++i) {
      const std::int64_t channel = task % groups * layout.channels_per_group + i / layout.area;
      xhat[i] = (x[task * size + i] - m) / sigma;
      const double z = xhat[i] * g[channel] + b[channel];
      const double s = 1.0 / (1.0 + std::exp(-z));
      const double dz = dy[task * size + i] * (apply_silu ? s + z * s * (1.0 - s) : 1.0);
      dg[channel] += dz * xhat[i];
      db[channel] += dz;
      dz_gamma[i] = dz * g[channel];
      mean_a += dz_gamma[i];
      mean_b += dz_gamma[i] * xhat[i];
    }
    mean_a /= static_cast<double>(size);
    mean_b /= static_cast<double>(size);
    for (std::int64_t i = 0; i < size; ++i) dx[task * size + i] = (dz_gamma[i] - mean_a - xhat[i] * mean_b) / sigma;
  }
  return {Tensor::from_vector(dx, input.shape()).to(input.dtype()),
          Tensor::from_vector(dg, gamma.shape()).to(input.dtype()), Tensor::from_vector(db, beta.shape()).to(input.dtype())};
}

}  // namespace ddpm
