#pragma once
// Matrix products. Operands may be any strided views (a transpose is just a view), so
// autograd's Aᵀ·B and A·Bᵀ never materialise a transposed copy at this interface.
#include "tensor/gemm/gemm.hpp"
#include "tensor/tensor.hpp"

namespace ddpm {

// a: [..., M, K], b: [..., K, N] -> [..., M, N]; batch axes broadcast. 1-D operands are
// not promoted: both must have rank >= 2.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace ddpm
