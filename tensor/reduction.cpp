#include "tensor/reduction.hpp"

#include <algorithm>
#include <limits>

#include <xsimd/xsimd.hpp>

#include "tensor/elementwise.hpp"
#include "tensor/kernel_path.hpp"
#include "tensor/parallel.hpp"

namespace ddpm {
namespace {

enum class ReduceOp { Sum, Max, Min };

// Rows of a full reduction are cut into blocks of this many elements; each block is
// summed in vector lanes, and the blocks' totals are added in order.
constexpr std::int64_t reduce_block = 1 << 14;

template <class T>
T identity(ReduceOp op) {
  if (op == ReduceOp::Sum) return T(0);
  return op == ReduceOp::Max ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
}

template <class T>
T combine(ReduceOp op, T a, T b) {
  if (op == ReduceOp::Sum) return a + b;
  return op == ReduceOp::Max ? std::max(a, b) : std::min(a, b);
}
template <class T, class A>
xsimd::batch<T, A> combine(ReduceOp op, xsimd::batch<T, A> a, xsimd::batch<T, A> b) {
  if (op == ReduceOp::Sum) return a + b;
  return op == ReduceOp::Max ? xsimd::max(a, b) : xsimd::min(a, b);
}

// Reduces count contiguous elements with four vector accumulators, then the lanes in order.
template <class T>
T reduce_contiguous(ReduceOp op, const T* data, std::int64_t count) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  Batch accumulators[4] = {Batch(identity<T>(op)), Batch(identity<T>(op)), Batch(identity<T>(op)), Batch(identity<T>(op))};
  std::int64_t i = 0;
  for (; i + 4 * width <= count; i += 4 * width)
    for (int lane = 0; lane < 4; ++lane)
      accumulators[lane] = combine(op, accumulators[lane], Batch::load_unaligned(data + i + lane * width));
  for (; i + width <= count; i += width) accumulators[0] = combine(op, accumulators[0], Batch::load_unaligned(data + i));
  const Batch total = combine(op, combine(op, accumulators[0], accumulators[1]), combine(op, accumulators[2], accumulators[3]));
  alignas(64) T lanes[width];
  total.store_aligned(lanes);
  T result = identity<T>(op);
  for (std::int64_t lane = 0; lane < width; ++lane) result = combine(op, result, lanes[lane]);
  for (; i < count; ++i) result = combine(op, result, data[i]);
  return result;
}

// One row of `count` elements, in fixed blocks whose partials are combined in block order.
// Large rows are split across threads by block; the split never changes the arithmetic.
template <class T>
T reduce_row(ReduceOp op, const T* data, std::int64_t count, bool parallel) {
  const std::int64_t blocks = (count + reduce_block - 1) / reduce_block;
  if (blocks <= 1) return reduce_contiguous(op, data, count);
  std::vector<T> partials(blocks);
  auto run = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t block = begin; block < end; ++block) {
      const std::int64_t start = block * reduce_block;
      partials[block] = reduce_contiguous(op, data + start, std::min(reduce_block, count - start));
    }
  };
  if (parallel) parallel_for(blocks, 1, run);
  else run(0, blocks);
  T result = identity<T>(op);
  for (T partial : partials) result = combine(op, result, partial);
  return result;
}

// [outer, reduced, inner] contiguous -> [outer, inner]: accumulate rows over `reduced`,
// vectorised across `inner`.
template <class T>
void reduce_columns(ReduceOp op, const T* data, T* output, std::int64_t outer, std::int64_t reduced,
                    std::int64_t inner) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  constexpr std::int64_t inner_block = 1024;
  const std::int64_t inner_blocks = (inner + inner_block - 1) / inner_block;
  parallel_for(outer * inner_blocks, std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(reduced, 1)),
               [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t task = begin; task < end; ++task) {
      const std::int64_t o = task / inner_blocks;
      const std::int64_t start = (task % inner_blocks) * inner_block;
      const std::int64_t stop = std::min(inner, start + inner_block);
      T* out = output + o * inner;
      std::fill(out + start, out + stop, identity<T>(op));
      for (std::int64_t r = 0; r < reduced; ++r) {
        const T* row = data + (o * reduced + r) * inner;
        std::int64_t i = start;
        for (; i + width <= stop; i += width)
          combine(op, Batch::load_unaligned(out + i), Batch::load_unaligned(row + i)).store_unaligned(out + i);
        for (; i < stop; ++i) out[i] = combine(op, out[i], row[i]);
      }
    }
  });
}

// Reference: for every output element, walk its reduced elements one by one.
template <class T>
void reduce_reference(ReduceOp op, const Tensor& input, const Axes& axes, Tensor& output) {
  const Tensor source = input;
  const std::int64_t rank = input.rank();
  std::vector<bool> is_reduced(rank, false);
  for (std::int64_t axis : axes) is_reduced[axis] = true;
  Shape kept_shape, reduced_shape_list;
  Strides kept_strides, reduced_strides;
  for (std::int64_t axis = 0; axis < rank; ++axis) {
    (is_reduced[axis] ? reduced_shape_list : kept_shape).push_back(input.shape()[axis]);
    (is_reduced[axis] ? reduced_strides : kept_strides).push_back(input.strides()[axis]);
  }
  const T* base = static_cast<const T*>(input.storage()->data()) + input.offset();
  T* out = output.data<T>();
  const std::int64_t outputs = shape_numel(kept_shape), per_output = shape_numel(reduced_shape_list);
  auto offset_of = [](std::int64_t linear, const Shape& shape, const Strides& strides) {
    std::int64_t offset = 0;
    for (std::size_t axis = shape.size(); axis-- > 0;) {
      offset += (linear % shape[axis]) * strides[axis];
      linear /= shape[axis];
    }
    return offset;
  };
  for (std::int64_t o = 0; o < outputs; ++o) {
    const std::int64_t kept_offset = offset_of(o, kept_shape, kept_strides);
    T result = identity<T>(op);
    for (std::int64_t r = 0; r < per_output; ++r)
      result = combine(op, result, base[kept_offset + offset_of(r, reduced_shape_list, reduced_strides)]);
    out[o] = result;
  }
}

const char* reduce_name(ReduceOp op) { return op == ReduceOp::Sum ? "sum" : op == ReduceOp::Max ? "max" : "min"; }

Tensor reduce(ReduceOp op, const Tensor& input, const Axes& axes, bool keepdim) {
  const char* name = reduce_name(op);
  check(input.defined(), name, "input is undefined");
  const Axes reduced = normalize_axes(axes, input.rank(), name);
  std::int64_t reduced_count = 1;
  for (std::int64_t axis : reduced) reduced_count *= input.shape()[axis];
  check(op == ReduceOp::Sum || reduced_count > 0, name, "cannot reduce an empty tensor of shape ",
        shape_string(input.shape()));
  // A contiguous tensor whose reduced axes are not adjacent (a bias gradient: NCHW summed
  // over N, H and W) is reduced one run of adjacent axes at a time, the last run first,
  // rather than copied into a permuted order: the sums then go per (n, c) over H, W, then
  // over n, a fixed order as any other.
  const bool adjacent = reduced.empty() || reduced.back() - reduced.front() + 1 == static_cast<std::int64_t>(reduced.size());
  if (!adjacent && input.is_contiguous() && input.numel() > 0 && !use_reference_kernels()) {
    Axes last_run{reduced.back()};
    while (last_run.size() < reduced.size() && reduced[reduced.size() - last_run.size() - 1] == last_run.front() - 1)
      last_run.insert(last_run.begin(), last_run.front() - 1);
    const Axes rest(reduced.begin(), reduced.end() - static_cast<std::ptrdiff_t>(last_run.size()));
    const Tensor result = reduce(op, reduce(op, input, last_run, true), rest, true);
    return keepdim ? result : result.view(reduced_shape(input.shape(), reduced, false));
  }
  Tensor output = Tensor::empty(reduced_shape(input.shape(), reduced, true), input.dtype());
  dispatch_floating(input.dtype(), name, [&]<class T>() {
    if (use_reference_kernels()) {
      reduce_reference<T>(op, input, reduced, output);
      return;
    }
    // Bring the data to [outer, reduced, inner] contiguous form: directly when the reduced
    // axes are adjacent in a contiguous tensor (see above for those that are not),
    // otherwise by a permuted copy.
    Tensor source = input;
    const bool in_place = adjacent && input.is_contiguous();
    if (!in_place) {
      Axes order;
      for (std::int64_t axis = 0; axis < input.rank(); ++axis)
        if (!std::binary_search(reduced.begin(), reduced.end(), axis)) order.push_back(axis);
      order.insert(order.end(), reduced.begin(), reduced.end());
      // Kept axes first, reduced last: inner is 1. (The permuted view may already count as
      // contiguous, e.g. when a size-1 axis moves, so whether a copy was made says nothing.)
      source = input.permute(order).contiguous();
    }
    std::int64_t inner = 1;
    if (in_place)
      for (std::int64_t axis = reduced.empty() ? input.rank() : reduced.back() + 1; axis < input.rank(); ++axis)
        inner *= input.shape()[axis];
    const std::int64_t outer = source.numel() / std::max<std::int64_t>(1, reduced_count * inner);
    const T* data = source.template data<T>();
    T* out = output.template data<T>();
    if (source.numel() == 0) {
      output.fill_(0.0);
    } else if (inner == 1) {
      const bool parallel_inside = outer < 4;
      parallel_for(outer, parallel_inside ? outer : std::max<std::int64_t>(1, 16384 / reduced_count),
                   [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t o = begin; o < end; ++o)
          out[o] = reduce_row(op, data + o * reduced_count, reduced_count, parallel_inside);
      });
    } else {
      reduce_columns(op, data, out, outer, reduced_count, inner);
    }
  });
  if (!keepdim) output = output.view(reduced_shape(input.shape(), reduced, false));
  return output;
}

}  // namespace

Axes normalize_axes(const Axes& axes, std::int64_t rank, const char* op) {
  Axes result;
  if (axes.empty()) {
    for (std::int64_t axis = 0; axis < rank; ++axis) result.push_back(axis);
    return result;
  }
  for (std::int64_t axis : axes) result.push_back(normalize_axis(axis, rank, op));
  std::sort(result.begin(), result.end());
  check(std::adjacent_find(result.begin(), result.end()) == result.end(), op, "an axis is listed twice");
  return result;
}

Shape reduced_shape(const Shape& shape, const Axes& normalized_axes, bool keepdim) {
  Shape result;
  for (std::int64_t axis = 0; axis < static_cast<std::int64_t>(shape.size()); ++axis) {
    const bool reduced = std::binary_search(normalized_axes.begin(), normalized_axes.end(), axis);
    if (!reduced) result.push_back(shape[axis]);
    else if (keepdim) result.push_back(1);
  }
  return result;
}

Tensor sum(const Tensor& input, const Axes& axes, bool keepdim) { return reduce(ReduceOp::Sum, input, axes, keepdim); }
Tensor max(const Tensor& input, const Axes& axes, bool keepdim) { return reduce(ReduceOp::Max, input, axes, keepdim); }
Tensor min(const Tensor& input, const Axes& axes, bool keepdim) { return reduce(ReduceOp::Min, input, axes, keepdim); }

Tensor mean(const Tensor& input, const Axes& axes, bool keepdim) {
  check(input.defined(), "mean", "input is undefined");
  const Axes reduced = normalize_axes(axes, input.rank(), "mean");
  std::int64_t count = 1;
  for (std::int64_t axis : reduced) count *= input.shape()[axis];
  check(count > 0, "mean", "cannot average an empty tensor of shape ", shape_string(input.shape()));
  return div(sum(input, reduced, keepdim), static_cast<double>(count));
}

Tensor var(const Tensor& input, const Axes& axes, bool keepdim, double correction) {
  check(input.defined(), "var", "input is undefined");
  const Axes reduced = normalize_axes(axes, input.rank(), "var");
  std::int64_t count = 1;
  for (std::int64_t axis : reduced) count *= input.shape()[axis];
  check(count - correction > 0, "var", "needs more than ", correction, " elements per output, got ", count);
  const Tensor centered = sub(input, mean(input, reduced, true));
  return div(sum(square(centered), reduced, keepdim), static_cast<double>(count) - correction);
}

Tensor sum_to_shape(const Tensor& input, const Shape& shape) {
  if (input.shape() == shape) return input;
  check(input.rank() >= static_cast<std::int64_t>(shape.size()), "sum_to_shape", "cannot sum ",
        shape_string(input.shape()), " to ", shape_string(shape));
  const std::int64_t lead = input.rank() - static_cast<std::int64_t>(shape.size());
  Axes axes;
  for (std::int64_t axis = 0; axis < input.rank(); ++axis) {
    if (axis < lead) axes.push_back(axis);
    else if (shape[axis - lead] == 1 && input.shape()[axis] != 1) axes.push_back(axis);
    else check(shape[axis - lead] == input.shape()[axis], "sum_to_shape", "cannot sum ", shape_string(input.shape()),
               " to ", shape_string(shape));
  }
  if (axes.empty()) return input.reshape(shape);
  return sum(input, axes, true).reshape(shape);
}

}  // namespace ddpm
