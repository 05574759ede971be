#include "tensor/factory.hpp"

#include <cmath>

namespace ddpm {

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor tensor = Tensor::empty(shape, dtype);
  tensor.fill_(value);
  return tensor;
}
Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& like) { return zeros(like.shape(), like.dtype()); }
Tensor ones_like(const Tensor& like) { return ones(like.shape(), like.dtype()); }

Tensor arange(double start, double end, double step, DType dtype) {
  check(step != 0.0, "arange", "step must not be zero");
  check(std::isfinite(start) && std::isfinite(end) && std::isfinite(step), "arange", "bounds must be finite");
  const auto count = static_cast<std::int64_t>(std::max(0.0, std::ceil((end - start) / step)));
  Tensor tensor = Tensor::empty({count}, dtype);
  dispatch_all(dtype, [&]<class T>() {
    T* data = tensor.data<T>();
    for (std::int64_t i = 0; i < count; ++i) data[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return tensor;
}

}  // namespace ddpm
