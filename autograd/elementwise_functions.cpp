// Elementwise ops and their gradients. Gradients of broadcast operands are summed back
// to the operand's shape.
#include "autograd/functions.hpp"
#include "tensor/factory.hpp"
#include "tensor/elementwise.hpp"
#include "tensor/reduction.hpp"

namespace ddpm {

using Gradients = std::vector<Tensor>;

Variable neg(const Variable& x) {
  return Variable::from_op(neg(x.value()), "neg", {x}, [](const Tensor& g) { return Gradients{neg(g)}; });
}

Variable abs(const Variable& x) {
  SavedTensor input(x.value(), "abs");
  return Variable::from_op(abs(x.value()), "abs", {x},
                           [input](const Tensor& g) { return Gradients{mul(g, sign(input.get()))}; });
}

Variable exp(const Variable& x) {
  Tensor y = exp(x.value());
  SavedTensor output(y, "exp");
  return Variable::from_op(y, "exp", {x}, [output](const Tensor& g) { return Gradients{mul(g, output.get())}; });
}

Variable log(const Variable& x) {
  SavedTensor input(x.value(), "log");
  return Variable::from_op(log(x.value()), "log", {x}, [input](const Tensor& g) { return Gradients{div(g, input.get())}; });
}

Variable sqrt(const Variable& x) {
  Tensor y = sqrt(x.value());
  SavedTensor output(y, "sqrt");
  return Variable::from_op(y, "sqrt", {x},
                           [output](const Tensor& g) { return Gradients{div(mul(g, 0.5), output.get())}; });
}

Variable rsqrt(const Variable& x) {
  // d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3
  Tensor y = rsqrt(x.value());
  SavedTensor output(y, "rsqrt");
  return Variable::from_op(y, "rsqrt", {x}, [output](const Tensor& g) {
    const Tensor& y = output.get();
    return Gradients{mul(g, mul(mul(y, square(y)), -0.5))};
  });
}

Variable square(const Variable& x) {
  SavedTensor input(x.value(), "square");
  return Variable::from_op(square(x.value()), "square", {x},
                           [input](const Tensor& g) { return Gradients{mul(g, mul(input.get(), 2.0))}; });
}

Variable tanh(const Variable& x) {
  Tensor y = tanh(x.value());
  SavedTensor output(y, "tanh");
  return Variable::from_op(y, "tanh", {x},
                           [output](const Tensor& g) { return Gradients{mul(g, sub(1.0, square(output.get())))}; });
}

Variable sigmoid(const Variable& x) {
  Tensor y = sigmoid(x.value());
  SavedTensor output(y, "sigmoid");
  return Variable::from_op(y, "sigmoid", {x}, [output](const Tensor& g) {
    const Tensor& y = output.get();
    return Gradients{mul(g, mul(y, sub(1.0, y)))};
  });
}

Variable silu(const Variable& x) {
  // d/dx x s(x) = s (1 + x (1 - s))
  SavedTensor input(x.value(), "silu");
  return Variable::from_op(silu(x.value()), "silu", {x}, [input](const Tensor& g) {
    const Tensor& x = input.get();
    const Tensor s = sigmoid(x);
    return Gradients{mul(g, mul(s, add(mul(x, sub(1.0, s)), 1.0)))};
  });
}

Variable pow(const Variable& x, double exponent) {
  SavedTensor input(x.value(), "pow");
  return Variable::from_op(pow(x.value(), exponent), "pow", {x}, [input, exponent](const Tensor& g) {
    return Gradients{mul(g, mul(pow(input.get(), exponent - 1.0), exponent))};
  });
}

Variable add(const Variable& a, const Variable& b) {
  const Shape shape_a = a.shape(), shape_b = b.shape();
  return Variable::from_op(add(a.value(), b.value()), "add", {a, b}, [shape_a, shape_b](const Tensor& g) {
    return Gradients{sum_to_shape(g, shape_a), sum_to_shape(g, shape_b)};
  });
}

Variable sub(const Variable& a, const Variable& b) {
  const Shape shape_a = a.shape(), shape_b = b.shape();
  return Variable::from_op(sub(a.value(), b.value()), "sub", {a, b}, [shape_a, shape_b](const Tensor& g) {
    return Gradients{sum_to_shape(g, shape_a), sum_to_shape(neg(g), shape_b)};
  });
}

Variable mul(const Variable& a, const Variable& b) {
  SavedTensor saved_a(a.value(), "mul"), saved_b(b.value(), "mul");
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return Variable::from_op(mul(a.value(), b.value()), "mul", {a, b}, [=](const Tensor& g) {
    return Gradients{need_a ? sum_to_shape(mul(g, saved_b.get()), saved_a.get().shape()) : Tensor(),
                     need_b ? sum_to_shape(mul(g, saved_a.get()), saved_b.get().shape()) : Tensor()};
  });
}

Variable div(const Variable& a, const Variable& b) {
  SavedTensor saved_a(a.value(), "div"), saved_b(b.value(), "div");
  const bool need_b = b.requires_grad();
  return Variable::from_op(div(a.value(), b.value()), "div", {a, b}, [=](const Tensor& g) {
    const Tensor& a = saved_a.get();
    const Tensor& b = saved_b.get();
    const Tensor grad_a = div(g, b);
    return Gradients{sum_to_shape(grad_a, a.shape()),
                     need_b ? sum_to_shape(neg(mul(grad_a, div(a, b))), b.shape()) : Tensor()};
  });
}

namespace {
// maximum/minimum: the gradient goes to the winner; on a tie each side gets half, as PyTorch.
Variable extremum(const Variable& a, const Variable& b, bool take_maximum) {
  const char* name = take_maximum ? "maximum" : "minimum";
  SavedTensor saved_a(a.value(), name), saved_b(b.value(), name);
  Tensor y = take_maximum ? maximum(a.value(), b.value()) : minimum(a.value(), b.value());
  return Variable::from_op(y, name, {a, b}, [=](const Tensor& g) {
    const Tensor& a = saved_a.get();
    const Tensor& b = saved_b.get();
    const Tensor a_wins = take_maximum ? gt(a, b) : lt(a, b);
    const Tensor share_a = add(a_wins, mul(eq(a, b), 0.5));
    const Tensor share_b = sub(1.0, share_a);
    return Gradients{sum_to_shape(mul(g, share_a), a.shape()), sum_to_shape(mul(g, share_b), b.shape())};
  });
}
}  // namespace

Variable maximum(const Variable& a, const Variable& b) { return extremum(a, b, true); }
Variable minimum(const Variable& a, const Variable& b) { return extremum(a, b, false); }
Variable maximum(const Variable& a, double b) { return extremum(a, Variable(full({}, b, a.dtype())), true); }
Variable minimum(const Variable& a, double b) { return extremum(a, Variable(full({}, b, a.dtype())), false); }

Variable add(const Variable& a, double b) {
  return Variable::from_op(add(a.value(), b), "add", {a}, [](const Tensor& g) { return Gradients{g}; });
}

Variable mul(const Variable& a, double b) {
  return Variable::from_op(mul(a.value(), b), "mul", {a}, [b](const Tensor& g) { return Gradients{mul(g, b)}; });
}

Variable sub(double a, const Variable& b) {
  return Variable::from_op(sub(a, b.value()), "sub", {b}, [](const Tensor& g) { return Gradients{neg(g)}; });
}

Variable where(const Tensor& condition, const Variable& a, const Variable& b) {
  const Tensor mask = condition.to(a.dtype());
  const Shape shape_a = a.shape(), shape_b = b.shape();
  return Variable::from_op(where(condition, a.value(), b.value()), "where", {a, b}, [=](const Tensor& g) {
    const Tensor zero = scalar_like(g, 0.0);
    return Gradients{sum_to_shape(where(mask, g, zero), shape_a), sum_to_shape(where(mask, zero, g), shape_b)};
  });
}

}  // namespace ddpm
