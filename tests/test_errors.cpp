// Every validation throws a TensorError that names the op and the shapes or dtypes.
#include "tests/test_support.hpp"

namespace ddpm::testing {

TEST_CASE("shape and dtype errors name the op and what was expected") {
  const Tensor a = ones({2, 3}), b = ones({4, 5});
  CHECK_THROWS_WITH_AS(add(a, b), "add: shapes [2, 3] and [4, 5] cannot be broadcast together", TensorError);
  CHECK_THROWS_WITH_AS(matmul(a, b), "matmul: inner dimensions differ: [2, 3] x [4, 5]", TensorError);
  CHECK_THROWS_WITH_AS(matmul(ones({3}), b), doctest::Contains("rank >= 2"), TensorError);
  CHECK_THROWS_WITH_AS(add(a, ones({2, 3}, DType::Float64)),
                       "add: operands have different dtypes: float32 and float64", TensorError);
  CHECK_THROWS_WITH_AS(exp(zeros({2}, DType::Int64)), doctest::Contains("exp: expected a floating dtype"), TensorError);
  CHECK_THROWS_WITH_AS(a.view({4, 2}), doctest::Contains("view: shape [4, 2] does not fit"), TensorError);
  CHECK_THROWS_WITH_AS(a.reshape({-1, -1}), doctest::Contains("only one size may be -1"), TensorError);
  CHECK_THROWS_WITH_AS(a.permute({0, 0}), doctest::Contains("appears twice"), TensorError);
  CHECK_THROWS_WITH_AS(a.narrow(1, 2, 2), "narrow: range [2, 4) is outside axis 1 of size 3", TensorError);
  CHECK_THROWS_WITH_AS(a.expand({2, 4}), "expand: cannot expand shape [2, 3] to [2, 4]", TensorError);
  CHECK_THROWS_WITH_AS(a.squeeze(0), "squeeze: axis 0 has size 2, not 1", TensorError);
  CHECK_THROWS_WITH_AS(sum(a, {2}), "sum: axis 2 is out of range for a tensor of rank 2", TensorError);
  CHECK_THROWS_WITH_AS(sum(a, {1, -1}), doctest::Contains("listed twice"), TensorError);
  CHECK_THROWS_WITH_AS(a.item(), "item: tensor of shape [2, 3] has 6 elements, expected 1", TensorError);
  CHECK_THROWS_WITH_AS(a.data<double>(), "data: requested float64 but tensor is float32", TensorError);
  CHECK_THROWS_WITH_AS(concat({a, b}, 0), doctest::Contains("tensor 1 has shape [4, 5]"), TensorError);
  CHECK_THROWS_WITH_AS(split(a, {1, 1}, 1), doctest::Contains("sizes add up to 2"), TensorError);
  CHECK_THROWS_WITH_AS(index_select(a, 0, Tensor::from_vector<std::int64_t>({2}, {1})),
                       doctest::Contains("index 2 at position 0 is out of range for axis 0 of size 2"), TensorError);
  CHECK_THROWS_WITH_AS(index_select(a, 0, ones({1})), "index_select: index must be int64, got float32", TensorError);
  CHECK_THROWS_WITH_AS(gather(a, 1, Tensor::from_vector<std::int64_t>({5, 0}, {2, 1})),
                       doctest::Contains("index 5 is out of range"), TensorError);
  CHECK_THROWS_WITH_AS(Tensor::from_vector<float>({1, 2, 3}, {2, 2}), "from_vector: got 3 values for shape [2, 2]",
                       TensorError);
  CHECK_THROWS_WITH_AS(arange(0, 1, 0), "arange: step must not be zero", TensorError);
  CHECK_THROWS_WITH_AS(var(ones({1})), doctest::Contains("var: needs more than 1 elements"), TensorError);
  CHECK_THROWS_WITH_AS(Tensor::empty({2, -1}), doctest::Contains("negative size"), TensorError);
  Generator generator(0);
  CHECK_THROWS_WITH_AS(randint(3, 3, {1}, generator), "randint: empty range [3, 3)", TensorError);
}

TEST_CASE("errors from Variable ops carry the same messages") {
  Variable a(ones({2, 3}), true);
  Variable b(ones({3, 2}), true);
  CHECK_THROWS_WITH_AS(add(a, b), doctest::Contains("add: shapes [2, 3] and [3, 2]"), TensorError);
  CHECK_THROWS_WITH_AS(matmul(a, a), doctest::Contains("matmul: inner dimensions differ"), TensorError);
}

}  // namespace ddpm::testing
