// Matrix product: dA = G·Bᵀ, dB = Aᵀ·G, taken through transposed views (no copies), and
// summed over batch axes that were broadcast.
#include "autograd/functions.hpp"
#include "tensor/matmul.hpp"

namespace ddpm {

Variable matmul(const Variable& a, const Variable& b) {
  SavedTensor saved_a(a.value(), "matmul"), saved_b(b.value(), "matmul");
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return Variable::from_op(matmul(a.value(), b.value()), "matmul", {a, b}, [=](const Tensor& g) {
    const Tensor& a = saved_a.get();
    const Tensor& b = saved_b.get();
    return std::vector<Tensor>{need_a ? sum_to_shape(matmul(g, b.transpose(-1, -2)), a.shape()) : Tensor(),
                               need_b ? sum_to_shape(matmul(a.transpose(-1, -2), g), b.shape()) : Tensor()};
  });
}

}  // namespace ddpm
