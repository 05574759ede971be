#pragma once
// Joining, splitting and indexing.
#include <vector>

#include "tensor/tensor.hpp"

namespace ddpm {

// Tensors that agree on every axis but `axis`, joined along it.
Tensor concat(const std::vector<Tensor>& tensors, std::int64_t axis);
// Views of consecutive pieces of `input` along `axis` with the given sizes (they must add up).
std::vector<Tensor> split(const Tensor& input, const std::vector<std::int64_t>& sizes, std::int64_t axis);
// Equal-shaped tensors stacked along a new axis.
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t axis);

// Rows of `input` along `axis` picked by a 1-D int64 `index` (an embedding lookup).
Tensor index_select(const Tensor& input, std::int64_t axis, const Tensor& index);
// torch.gather: output[..i..] = input[..index[..i..]..] along `axis`; index has input's rank.
Tensor gather(const Tensor& input, std::int64_t axis, const Tensor& index);
// The adjoints of the two above: zeros of `shape` with `source` added at the indexed places.
Tensor index_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& source);
Tensor scatter_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& source);

}  // namespace ddpm
