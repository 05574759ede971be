#pragma once
// The generic path of every elementwise kernel: visits the elements [begin, end) of
// `shape` in row-major order and hands the body each operand's element offset. Operands
// may have any strides, including 0 for broadcast axes.
#include <array>
#include <cstdint>

#include "tensor/shape.hpp"

namespace ddpm {

// The same elements in the same order, in fewer and longer runs: drops size-1 axes and
// merges each axis into the next where every operand steps through the pair as through one
// axis (stride[a] == stride[a + 1] · shape[a + 1]).
template <std::size_t N>
void coalesce_axes(Shape& shape, std::array<Strides, N>& strides) {
  Shape merged_shape;
  std::array<Strides, N> merged_strides;
  for (std::size_t axis = 0; axis < shape.size(); ++axis) {
    if (shape[axis] == 1) continue;
    bool merges = !merged_shape.empty();
    for (std::size_t operand = 0; operand < N && merges; ++operand)
      merges = merged_strides[operand].back() == strides[operand][axis] * shape[axis];
    if (merges) {
      merged_shape.back() *= shape[axis];
      for (std::size_t operand = 0; operand < N; ++operand) merged_strides[operand].back() = strides[operand][axis];
      continue;
    }
    merged_shape.push_back(shape[axis]);
    for (std::size_t operand = 0; operand < N; ++operand) merged_strides[operand].push_back(strides[operand][axis]);
  }
  shape = std::move(merged_shape);
  strides = std::move(merged_strides);
}

template <std::size_t N, class Body>
void strided_for_each(const Shape& shape, const std::array<const Strides*, N>& strides,
                      std::int64_t begin, std::int64_t end, Body&& body) {
  const std::size_t rank = shape.size();
  std::array<std::int64_t, N> offsets{};
  if (rank == 0) {
    if (begin < end) body(offsets);
    return;
  }
  // Multi-index of `begin`, and the operands' offsets there.
  std::array<std::int64_t, 16> index{};
  std::int64_t remainder = begin;
  for (std::size_t axis = rank; axis-- > 0;) {
    index[axis] = remainder % shape[axis];
    remainder /= shape[axis];
    for (std::size_t operand = 0; operand < N; ++operand)
      offsets[operand] += index[axis] * (*strides[operand])[axis];
  }
  const std::size_t last = rank - 1;
  std::int64_t position = begin;
  while (position < end) {
    const std::int64_t run = std::min(end - position, shape[last] - index[last]);
    std::array<std::int64_t, N> inner_strides;
    for (std::size_t operand = 0; operand < N; ++operand) inner_strides[operand] = (*strides[operand])[last];
    for (std::int64_t i = 0; i < run; ++i) {
      body(offsets);
      for (std::size_t operand = 0; operand < N; ++operand) offsets[operand] += inner_strides[operand];
    }
    position += run;
    index[last] += run;
    // Carry into the outer axes.
    for (std::size_t axis = last; axis > 0 && index[axis] == shape[axis]; --axis) {
      for (std::size_t operand = 0; operand < N; ++operand)
        offsets[operand] -= index[axis] * (*strides[operand])[axis];
      index[axis] = 0;
      ++index[axis - 1];
      for (std::size_t operand = 0; operand < N; ++operand) offsets[operand] += (*strides[operand])[axis - 1];
    }
  }
}

}  // namespace ddpm
