// GroupNorm's backward (with the SiLU of the fused forward): two passes over each group,
// the first for dz and the per-channel sums, the second for dx.
#include <cmath>
#include <vector>

#include "tensor/group_norm.hpp"
#include "tensor/group_norm/group_walk.hpp"
#include "tensor/parallel.hpp"
#include "tensor/vector_sigmoid.hpp"

namespace ddpm {
namespace {

using namespace group_norm_detail;

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

}  // namespace ddpm
