#pragma once
#include "tensor/tensor.hpp"

namespace ddpm {

Tensor zeros(const Shape& shape, DType dtype = DType::Float32);
Tensor ones(const Shape& shape, DType dtype = DType::Float32);
Tensor full(const Shape& shape, double value, DType dtype = DType::Float32);
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
// start, start + step, ... while < end (step > 0) or > end (step < 0); 1-D.
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::Float32);

}  // namespace ddpm
