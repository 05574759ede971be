#pragma once
// Reductions over any set of axes (empty = all axes), with keepdim. Sums are
// accumulated in a fixed order: per-chunk partials combined in chunk order, so the result
// is the same bits on any thread count.
#include <vector>

#include "tensor/tensor.hpp"

namespace ddpm {

using Axes = std::vector<std::int64_t>;

Tensor sum(const Tensor& input, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& input, const Axes& axes = {}, bool keepdim = false);
// amax semantics: the largest value; its gradient is shared equally among ties.
Tensor max(const Tensor& input, const Axes& axes = {}, bool keepdim = false);
Tensor min(const Tensor& input, const Axes& axes = {}, bool keepdim = false);
// Variance with `correction` (1: unbiased, as torch.var's default; 0: population).
Tensor var(const Tensor& input, const Axes& axes = {}, bool keepdim = false, double correction = 1.0);

// Sums `input` down to `shape`, the reverse of broadcasting `shape` up to input.shape().
Tensor sum_to_shape(const Tensor& input, const Shape& shape);

// The reduced axes, sorted and unique; empty `axes` means all of them.
Axes normalize_axes(const Axes& axes, std::int64_t rank, const char* op);
// The shape of a reduction's result with keepdim (reduced axes kept as size 1).
Shape reduced_shape(const Shape& shape, const Axes& normalized_axes, bool keepdim);

}  // namespace ddpm
