#include "tensor/group_norm.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "tensor/parallel.hpp"
#include "tensor/simd_tail.hpp"
#include "tensor/vector_sigmoid.hpp"

namespace ddpm {
namespace {

// Groups per task: small groups (a 7 x 7 image's 2 channels are 98 values) are batched
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

// out[i] = f(x[i] * scale + shift), f = identity or SiLU, over one channel row.
template <class T>
void affine_row(const T* x, T* out, std::int64_t count, T scale, T shift, bool apply_silu) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  if (count < width) {
    alignas(64) T x_lanes[width] = {}, out_lanes[width];
    std::copy(x, x + count, x_lanes);
    affine_row(x_lanes, out_lanes, width, scale, shift, apply_silu);
    std::copy(out_lanes, out_lanes + count, out);
    return;
  }
  const Batch minus_scale(-scale), minus_shift(-shift);
  auto step = [&](std::int64_t i) {
    // -z first: the sigmoid takes it, and z = -(-z) is exact.
    const Batch minus_z = xsimd::fma(Batch::load_unaligned(x + i), minus_scale, minus_shift);
    (apply_silu ? -minus_z * sigmoid_of_negated(minus_z) : -minus_z).store_unaligned(out + i);
  };
  std::int64_t i = 0;
  for (; i + width <= count; i += width) step(i);
  if (i < count) step(count - width);  // overlaps the last full vector: same values rewritten
}

// One channel of one image in the backward: its group's statistics, its affine
// coefficients, and its row length (H·W).
template <class T>
struct ChannelRow {
  T mean, inverse_std, gamma, beta;
  std::int64_t area;
};

// Pass 1 of the backward over one channel row: dz, the gradient at the affine output
// (through SiLU's derivative when applied), into `dz`; returns {Σ dz, Σ dz·x̂}.
template <bool ApplySilu, class T>
std::pair<double, double> output_gradient_row(const ChannelRow<T>& row, const T* x, const T* dy, T* dz) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  if (row.area < width) {
    // Padded lanes have dy = 0, so dz = 0 there and the sums are unchanged.
    alignas(64) T x_lanes[width] = {}, dy_lanes[width] = {}, dz_lanes[width];
    std::copy(x, x + row.area, x_lanes);
    std::copy(dy, dy + row.area, dy_lanes);
    ChannelRow<T> padded = row;
    padded.area = width;
    const auto sums = output_gradient_row<ApplySilu>(padded, x_lanes, dy_lanes, dz_lanes);
    std::copy(dz_lanes, dz_lanes + row.area, dz);
    return sums;
  }
  const Batch mean(row.mean), inverse_std(row.inverse_std), one(T(1));
  // -z = -(x̂ γ + β), so the sigmoid's argument comes from x in one subtraction and one FMA.
  const Batch minus_scale(-row.inverse_std * row.gamma), minus_beta(-row.beta);
  Batch lane_dz(T(0)), lane_dz_xhat(T(0));
  auto step = [&](std::int64_t i, auto keep_lanes) {
    const Batch centred = Batch::load_unaligned(x + i) - mean, g = Batch::load_unaligned(dy + i);
    Batch d = g;
    if constexpr (ApplySilu) {
      // SiLU'(z) = s (1 + z (1 - s)), s = sigmoid(z).
      const Batch minus_z = xsimd::fma(centred, minus_scale, minus_beta);
      const Batch s = sigmoid_of_negated(minus_z);
      d = g * s * xsimd::fnma(minus_z, one - s, one);
    }
    d.store_unaligned(dz + i);
    d = keep_lanes(d);
    lane_dz += d;
    lane_dz_xhat = xsimd::fma(d, centred * inverse_std, lane_dz_xhat);
  };
  std::int64_t i = 0;
  for (; i + width <= row.area; i += width) step(i, [](Batch d) { return d; });
  if (i < row.area) {
    // The vector ending at the row's end recomputes lanes before i (same inputs, same
    // bits) and counts only the new ones.
    const std::int64_t start = row.area - width;
    const auto fresh = lanes_from<T>(i - start);
    step(start, [&](Batch d) { return xsimd::select(fresh, d, Batch(T(0))); });
  }
  // A channel's lanes hold a few dozen values each: summed in T, then carried in double.
  return {xsimd::hadd(lane_dz), xsimd::hadd(lane_dz_xhat)};
}

// Pass 2 over one channel row: dx = inverse_std (γ dz - mean(γ dz) - x̂ mean(γ dz x̂)),
// as dz (inverse_std γ) - (x - mean) (inverse_std² mean(γ dz x̂)) - inverse_std mean(γ dz).
template <class T>
void input_gradient_row(const ChannelRow<T>& row, T mean_dz_gamma, T mean_dz_gamma_xhat, const T* x, const T* dz,
                        T* dx) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  if (row.area < width) {
    alignas(64) T x_lanes[width] = {}, dz_lanes[width] = {}, dx_lanes[width];
    std::copy(x, x + row.area, x_lanes);
    std::copy(dz, dz + row.area, dz_lanes);
    ChannelRow<T> padded = row;
    padded.area = width;
    input_gradient_row(padded, mean_dz_gamma, mean_dz_gamma_xhat, x_lanes, dz_lanes, dx_lanes);
    std::copy(dx_lanes, dx_lanes + row.area, dx);
    return;
  }
  const Batch mean(row.mean), dz_scale(row.inverse_std * row.gamma);
  const Batch centred_scale(row.inverse_std * row.inverse_std * mean_dz_gamma_xhat);
  const Batch minus_shift(-row.inverse_std * mean_dz_gamma);
  auto step = [&](std::int64_t i) {
    const Batch centred = Batch::load_unaligned(x + i) - mean;
    xsimd::fma(Batch::load_unaligned(dz + i), dz_scale, xsimd::fnma(centred, centred_scale, minus_shift))
        .store_unaligned(dx + i);
  };
  std::int64_t i = 0;
  for (; i + width <= row.area; i += width) step(i);
  if (i < row.area) step(row.area - width);  // overlaps the last full vector: same values rewritten
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
    parallel_for(layout.batch * groups, groups_per_task(group_size), [&](std::int64_t begin, std::int64_t end) {
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
        for (std::int64_t c = 0; c < layout.channels_per_group; ++c) {
          const std::int64_t channel = first_channel + c;
          const T scale = static_cast<T>(inverse_std * gamma_data[channel]);
          const T shift = static_cast<T>(beta_data[channel] - group_mean * inverse_std * gamma_data[channel]);
          affine_row(data + c * layout.area, out + task * group_size + c * layout.area, layout.area, scale, shift,
                     apply_silu);
        }
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
    // Per (image, channel) sums of dz and dz·x̂, reduced over images in order afterwards.
    std::vector<double> sum_dz(layout.batch * layout.channels), sum_dz_xhat(layout.batch * layout.channels);
    const std::int64_t group_size = layout.channels_per_group * layout.area;
    parallel_for(layout.batch * groups, groups_per_task(group_size), [&](std::int64_t begin, std::int64_t end) {
      // dz (the gradient at the affine output) for one group, kept for pass 2.
      thread_local std::vector<T> dz_buffer;
      dz_buffer.resize(static_cast<std::size_t>(group_size));
      for (std::int64_t task = begin; task < end; ++task) {
        const T group_mean = mean_data[task], group_inverse_std = inverse_std_data[task];
        const std::int64_t image = task / groups, first_channel = task % groups * layout.channels_per_group;
        double group_dz_gamma = 0, group_dz_gamma_xhat = 0;
        for (std::int64_t c = 0; c < layout.channels_per_group; ++c) {
          const std::int64_t channel = first_channel + c, offset = task * group_size + c * layout.area;
          const ChannelRow<T> row{group_mean, group_inverse_std, gamma_data[channel], beta_data[channel], layout.area};
          const auto [channel_dz, channel_dz_xhat] =
              apply_silu ? output_gradient_row<true>(row, in + offset, upstream + offset, dz_buffer.data() + c * layout.area)
                         : output_gradient_row<false>(row, in + offset, upstream + offset, dz_buffer.data() + c * layout.area);
          sum_dz[image * layout.channels + channel] = channel_dz;
          sum_dz_xhat[image * layout.channels + channel] = channel_dz_xhat;
          group_dz_gamma += channel_dz * row.gamma;
          group_dz_gamma_xhat += channel_dz_xhat * row.gamma;
        }
        const T mean_dz_gamma = static_cast<T>(group_dz_gamma / static_cast<double>(group_size));
        const T mean_dz_gamma_xhat = static_cast<T>(group_dz_gamma_xhat / static_cast<double>(group_size));
        for (std::int64_t c = 0; c < layout.channels_per_group; ++c) {
          const std::int64_t offset = task * group_size + c * layout.area;
          const ChannelRow<T> row{group_mean, group_inverse_std, gamma_data[first_channel + c], T(0), layout.area};
          input_gradient_row(row, mean_dz_gamma, mean_dz_gamma_xhat, in + offset, dz_buffer.data() + c * layout.area,
                             dx + offset);
        }
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
