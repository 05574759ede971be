// The engine's contract: accumulation, reuse, broadcasting, no-grad, detach, graph
// lifetime and in-place detection.
#include "tests/test_support.hpp"

namespace ddpm::testing {

TEST_CASE("gradients accumulate across backward calls and zero_grad drops them") {
  Variable x(Tensor::from_vector<double>({1, 2, 3}, {3}), true);
  sum(mul(x, x)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4, 6});
  sum(mul(x, 3.0)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{5, 7, 9});
  x.zero_grad();
  CHECK_FALSE(x.has_grad());
}

TEST_CASE("a variable used several times gets the sum of its gradients") {
  Variable x(Tensor::from_vector<double>({2.0}, {1}), true);
  Variable y = add(mul(x, x), mul(exp(x), x));  // x² + x eˣ  ->  2x + eˣ (1 + x)
  y.backward(Tensor::from_vector<double>({1.0}, {1}));
  CHECK(x.grad().item() == doctest::Approx(4.0 + std::exp(2.0) * 3.0).epsilon(1e-12));
}

TEST_CASE("gradients of broadcast inputs are reduced to the input's shape") {
  Variable a(ones({2, 3}, DType::Float64), true);
  Variable b(Tensor::from_vector<double>({1, 2, 3}, {3}), true);
  sum(mul(a, b)).backward();
  CHECK(b.grad().shape() == Shape{3});
  CHECK(b.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
}

TEST_CASE("no-grad scope and detach record nothing") {
  Variable x(ones({2}), true);
  {
    NoGrad scope;
    CHECK_FALSE(grad_enabled());
    Variable y = mul(x, 2.0);
    CHECK_FALSE(y.requires_grad());
  }
  CHECK(grad_enabled());
  Variable z = sum(mul(x.detach(), 2.0));
  CHECK_FALSE(z.requires_grad());
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("does not require grad"), TensorError);
}

TEST_CASE("the graph is freed after backward unless retained") {
  Variable x(ones({2}, DType::Float64), true);
  Variable y = sum(exp(x));
  y.backward(true);
  y.backward();
  CHECK(x.grad().to_vector<double>()[0] == doctest::Approx(2 * std::exp(1.0)));
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), TensorError);
}

TEST_CASE("modifying a saved tensor in place is reported at backward") {
  Variable x(ones({3}, DType::Float64), true);
  Variable y = mul(x, 2.0);  // a product with a constant saves nothing
  Variable loss = sum(y);
  Variable other = sum(mul(y, y));  // saves y for the product
  y.value().fill_(5.0);             // in place, after it was saved
  CHECK_NOTHROW(loss.backward());
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2, 2});
  CHECK_THROWS_WITH_AS(other.backward(), doctest::Contains("modified in place"), TensorError);
}

TEST_CASE("in-place changes through a view are detected too") {
  Variable x(ones({2, 2}, DType::Float64), true);
  Variable y = mul(x, x);  // saves x
  Tensor row = x.value().select(0, 1);
  row.fill_(3.0);
  CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("modified in place"), TensorError);
}

TEST_CASE("backward needs a one-element output or an explicit gradient of the right shape") {
  Variable x(ones({2, 2}), true);
  Variable y = mul(x, 2.0);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("one element"), TensorError);
  CHECK_THROWS_WITH_AS(y.backward(ones({3})), doctest::Contains("[3]"), TensorError);
  y.backward(ones({2, 2}));
  CHECK(x.grad().to_vector<float>() == std::vector<float>{2, 2, 2, 2});
}

TEST_CASE("only leaves of floating dtype can require grad") {
  CHECK_THROWS_WITH_AS(Variable(zeros({2}, DType::Int64), true), doctest::Contains("floating"), TensorError);
  Variable x(ones({2}), true);
  Variable y = mul(x, 2.0);
  CHECK_FALSE(y.is_leaf());
  CHECK(y.op_name() == "mul");
  CHECK_THROWS_WITH_AS(y.set_requires_grad(false), doctest::Contains("only leaves"), TensorError);
}

}  // namespace ddpm::testing
