// GroupNorm's forward, with the affine transform and an optional SiLU fused: statistics
// per (image, group) in a fixed order, then one pass over the group's vectors.
#include <cmath>
#include <vector>

#include "tensor/group_norm.hpp"
#include "tensor/group_norm/group_walk.hpp"
#include "tensor/parallel.hpp"
#include "tensor/vector_sigmoid.hpp"

namespace ddpm {
namespace {

using namespace group_norm_detail;

// out = f(x·scale_c + shift_c) over a group's row, f = identity or SiLU, given the
// per-channel coefficients negated (SiLU's sigmoid takes -z; z = -(-z) is exact).
template <bool ApplySilu, class T>
void affine_group(std::int64_t channels, std::int64_t area, const T* minus_scale, const T* minus_shift, const T* x,
                  T* out) {
  using Batch = xsimd::batch<T>;
  for_each_span<T>(channels, area, [&](const VectorSpan& span) {
    const Batch values = Batch::load_unaligned(x + span.start);
    const Batch scale = coefficient_for(span, minus_scale), shift = coefficient_for(span, minus_shift);
    if constexpr (ApplySilu) silu_of_affine(values, scale, shift).store_unaligned(out + span.start);
    else (-xsimd::fma(values, scale, shift)).store_unaligned(out + span.start);
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
        const std::int64_t first_channel = task % groups * layout.channels_per_group;
        T* minus_scale = coefficients.data();
        T* minus_shift = minus_scale + layout.channels_per_group;
        normalize_group(data, group_size, eps, layout.channels_per_group, gamma_data + first_channel,
                        beta_data + first_channel, mean_data + task, inverse_std_data + task, minus_scale, minus_shift);
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

}  // namespace ddpm
