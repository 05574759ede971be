#pragma once
// Shapes and strides are plain vectors of int64, in elements, row-major like PyTorch.
#include <cstdint>
#include <string>
#include <vector>

namespace ddpm {

using Shape = std::vector<std::int64_t>;
using Strides = std::vector<std::int64_t>;

std::int64_t shape_numel(const Shape& shape);
Strides contiguous_strides(const Shape& shape);
std::string shape_string(const Shape& shape);

// NumPy broadcasting of two shapes; throws naming `op` and both shapes when they disagree.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Resolves a possibly negative axis against `rank`; throws naming `op` when out of range.
std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const char* op);

}  // namespace ddpm
