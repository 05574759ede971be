// Fits y = 3x - 1 with one linear layer by gradient descent, then checks the gradient of
// a small expression with finite differences.
#include <autograd/autograd_library.hpp>
#include <iostream>

int main() {
  using namespace ddpm;
  Generator generator(0);
  const Tensor x = randn({64, 1}, generator);
  const Tensor y = sub(mul(x, 3.0), 1.0);

  Variable weight(zeros({1, 1}), true), bias(zeros({1}), true);
  for (int step = 0; step < 200; ++step) {
    Variable prediction = add(matmul(Variable(x), weight), bias);
    Variable loss = mean(square(sub(prediction, Variable(y))));
    weight.zero_grad();
    bias.zero_grad();
    loss.backward();
    NoGrad no_grad;
    add_(weight.value(), weight.grad(), -0.1);
    add_(bias.value(), bias.grad(), -0.1);
  }
  std::cout << "weight " << weight.value() << "\nbias " << bias.value() << "\n";

  Generator inputs(1);
  const auto result = check_gradients(
      [](const std::vector<Variable>& v) { return sum(softmax(matmul(v[0], v[1]), -1)); },
      {randn({3, 4}, inputs, DType::Float64), randn({4, 5}, inputs, DType::Float64)});
  std::cout << (result.passed ? "gradient check passed" : "gradient check FAILED: " + result.message)
            << " (" << result.checked << " elements)\n";
  const bool fitted = std::abs(weight.value().item() - 3.0) < 1e-3 && std::abs(bias.value().item() + 1.0) < 1e-3;
  return result.passed && fitted ? 0 : 1;
}
