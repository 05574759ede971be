#pragma once
#include <iosfwd>
#include <string>

#include "tensor/tensor.hpp"

namespace ddpm {

// "tensor([[1, 2], [3, 4]], shape=[2, 2], dtype=float32)"; long axes are elided with "...".
std::string to_string(const Tensor& tensor, std::int64_t edge_items = 3);
std::ostream& operator<<(std::ostream& stream, const Tensor& tensor);

}  // namespace ddpm
