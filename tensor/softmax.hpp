#pragma once
#include "tensor/tensor.hpp"

namespace ddpm {

// Numerically stable softmax / log-softmax along `axis` (max subtracted first).
Tensor softmax(const Tensor& input, std::int64_t axis = -1);
Tensor log_softmax(const Tensor& input, std::int64_t axis = -1);

}  // namespace ddpm
