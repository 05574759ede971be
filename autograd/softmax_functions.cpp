// softmax: dx = y (g - Σ g y);  log_softmax: dx = g - softmax(x) Σ g.
#include "autograd/functions.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/softmax.hpp"

namespace ddpm {

Variable softmax(const Variable& x, std::int64_t axis) {
  Tensor y = softmax(x.value(), axis);
  SavedTensor output(y, "softmax");
  return Variable::from_op(y, "softmax", {x}, [output, axis](const Tensor& g) {
    const Tensor& y = output.get();
    return std::vector<Tensor>{mul(y, sub(g, sum(mul(g, y), {axis}, true)))};
  });
}

Variable log_softmax(const Variable& x, std::int64_t axis) {
  Tensor y = log_softmax(x.value(), axis);
  SavedTensor output(y, "log_softmax");
  return Variable::from_op(y, "log_softmax", {x}, [output, axis](const Tensor& g) {
    return std::vector<Tensor>{sub(g, mul(exp(output.get()), sum(g, {axis}, true)))};
  });
}

}  // namespace ddpm
