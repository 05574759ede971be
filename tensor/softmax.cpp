#include "tensor/softmax.hpp"

#include <algorithm>
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "tensor/kernel_path.hpp"
#include "tensor/parallel.hpp"

namespace ddpm {
namespace {

template <class T, class Combine>
T fold_lanes(const xsimd::batch<T>& lanes_batch, T start, Combine combine) {
  alignas(64) T lanes[xsimd::batch<T>::size];
  lanes_batch.store_aligned(lanes);
  for (T lane : lanes) start = combine(start, lane);
  return start;
}

// One row of `count` contiguous values. The fast path vectorises max, exp and the sum;
// the reference path is the textbook loop.
template <class T>
void softmax_row(const T* input, T* output, std::int64_t count, bool logarithm) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  T largest = -INFINITY;
  std::int64_t i = 0;
  Batch largest_lanes(largest);
  for (; i + width <= count; i += width) largest_lanes = xsimd::max(largest_lanes, Batch::load_unaligned(input + i));
  largest = fold_lanes(largest_lanes, largest, [](T a, T b) { return std::max(a, b); });
  for (; i < count; ++i) largest = std::max(largest, input[i]);
  // exp(x - max) into the output, summed in lanes.
  Batch total_lanes(T(0));
  i = 0;
  for (; i + width <= count; i += width) {
    const Batch shifted = xsimd::exp(Batch::load_unaligned(input + i) - Batch(largest));
    shifted.store_unaligned(output + i);
    total_lanes += shifted;
  }
  T total = fold_lanes(total_lanes, T(0), [](T a, T b) { return a + b; });
  for (; i < count; ++i) {
    output[i] = std::exp(input[i] - largest);
    total += output[i];
  }
  if (logarithm) {
    const T log_total = std::log(total);
    for (i = 0; i < count; ++i) output[i] = input[i] - largest - log_total;
  } else {
    const T inverse = T(1) / total;
    for (i = 0; i < count; ++i) output[i] *= inverse;
  }
}

template <class T>
void softmax_row_reference(const T* input, T* output, std::int64_t count, bool logarithm) {
  T largest = -INFINITY;
  for (std::int64_t i = 0; i < count; ++i) largest = std::max(largest, input[i]);
  T total = 0;
  for (std::int64_t i = 0; i < count; ++i) total += std::exp(input[i] - largest);
  for (std::int64_t i = 0; i < count; ++i)
    output[i] = logarithm ? input[i] - largest - std::log(total) : std::exp(input[i] - largest) / total;
}

Tensor softmax_along(const Tensor& input, std::int64_t axis, bool logarithm) {
  const char* name = logarithm ? "log_softmax" : "softmax";
  check(input.defined(), name, "input is undefined");
  axis = normalize_axis(axis, std::max<std::int64_t>(input.rank(), 1), name);
  if (input.rank() == 0) return softmax_along(input.reshape({1}), 0, logarithm).reshape({});
  // Move the axis last, work on contiguous rows, move it back.
  const Tensor rows = input.transpose(axis, -1).contiguous();
  Tensor output = Tensor::empty(rows.shape(), input.dtype());
  const std::int64_t count = rows.size(-1);
  const std::int64_t row_count = count == 0 ? 0 : rows.numel() / count;
  dispatch_floating(input.dtype(), name, [&]<class T>() {
    const T* in = rows.data<T>();
    T* out = output.data<T>();
    const bool reference = use_reference_kernels();
    parallel_for(row_count, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(count, 1)),
                 [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t row = begin; row < end; ++row) {
        if (reference) softmax_row_reference(in + row * count, out + row * count, count, logarithm);
        else softmax_row(in + row * count, out + row * count, count, logarithm);
      }
    });
  });
  return output.transpose(axis, -1).contiguous();
}

}  // namespace

Tensor softmax(const Tensor& input, std::int64_t axis) { return softmax_along(input, axis, false); }
Tensor log_softmax(const Tensor& input, std::int64_t axis) { return softmax_along(input, axis, true); }

}  // namespace ddpm
