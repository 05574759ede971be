// Table-driven gradient checks (the idea of ggml's test-backend-ops): every differentiable
// op states its input shapes and domain, finite-difference step, tolerance and kinks; each
// case runs with contiguous, transposed-storage and strided-slice inputs.
#include <functional>

#include "tests/test_support.hpp"

#include "nn/feature_classifier.hpp"

namespace ddpm::testing {
namespace {

enum class Domain { Any, Positive };  // Positive: uniform in [0.5, 2)

struct GradientCase {
  std::string name;
  std::vector<Shape> shapes;
  DifferentiableFunction function;
  std::vector<Domain> domains = {};  // per input; default Any
  double step = 1e-6;
  double tolerance = 1e-6;
  std::vector<double> kinks = {};
};

using V = std::vector<Variable>;

Tensor index_tensor(std::vector<std::int64_t> values, Shape shape) { return Tensor::from_vector(values, shape); }

std::vector<GradientCase> cases() {
  std::vector<GradientCase> table = {
      // unary
      {"neg", {{3, 4}}, [](const V& x) { return neg(x[0]); }},
      {"abs", {{3, 4}}, [](const V& x) { return abs(x[0]); }, {}, 1e-6, 1e-6, {0.0}},
      {"exp", {{3, 1, 4}}, [](const V& x) { return exp(x[0]); }},
      {"log", {{5, 3}}, [](const V& x) { return log(x[0]); }, {Domain::Positive}},
      {"sqrt", {{4, 3}}, [](const V& x) { return sqrt(x[0]); }, {Domain::Positive}},
      {"rsqrt", {{4, 3}}, [](const V& x) { return rsqrt(x[0]); }, {Domain::Positive}},
      {"square", {{2, 3, 2}}, [](const V& x) { return square(x[0]); }},
      {"tanh", {{3, 5}}, [](const V& x) { return tanh(x[0]); }},
      {"sigmoid", {{3, 5}}, [](const V& x) { return sigmoid(x[0]); }},
      {"silu", {{1, 3, 5}}, [](const V& x) { return silu(x[0]); }},
      {"pow 3", {{3, 4}}, [](const V& x) { return pow(x[0], 3.0); }},
      {"pow -1.5", {{3, 4}}, [](const V& x) { return pow(x[0], -1.5); }, {Domain::Positive}},
      // binary, with broadcasting and size-1 axes
      {"add", {{3, 4}, {3, 4}}, [](const V& x) { return add(x[0], x[1]); }},
      {"add broadcast", {{2, 3, 4}, {4}}, [](const V& x) { return add(x[0], x[1]); }},
      {"sub broadcast both", {{3, 1}, {1, 4}}, [](const V& x) { return sub(x[0], x[1]); }},
      {"mul", {{3, 4}, {3, 4}}, [](const V& x) { return mul(x[0], x[1]); }},
      {"mul by 0-d", {{2, 5}, {}}, [](const V& x) { return mul(x[0], x[1]); }},
      {"div", {{3, 4}, {3, 4}}, [](const V& x) { return div(x[0], x[1]); }, {Domain::Any, Domain::Positive}},
      {"div broadcast", {{2, 3, 4}, {3, 1}}, [](const V& x) { return div(x[0], x[1]); }, {Domain::Any, Domain::Positive}},
      {"maximum", {{3, 4}, {3, 4}}, [](const V& x) { return maximum(x[0], x[1]); }},
      {"clamp by scalars", {{3, 4}}, [](const V& x) { return minimum(maximum(x[0], -0.5), 0.5); }, {}, 1e-6, 1e-6, {-0.5, 0.5}},
      {"minimum broadcast", {{3, 4}, {4}}, [](const V& x) { return minimum(x[0], x[1]); }},
      {"scalar add/mul/sub", {{3, 4}}, [](const V& x) { return sub(2.0, mul(add(x[0], 1.5), -3.0)); }},
      {"where", {{3, 4}, {3, 4}},
       [](const V& x) { return where(index_tensor({1, 0, 1, 1}, {4}).to(DType::Float64), x[0], x[1]); }},
      // reductions
      {"sum all", {{3, 4}}, [](const V& x) { return sum(x[0]); }},
      {"sum axis 1 keepdim", {{3, 4, 2}}, [](const V& x) { return sum(x[0], {1}, true); }},
      {"sum axes 0,2", {{3, 4, 2}}, [](const V& x) { return sum(x[0], {0, 2}); }},
      {"mean axis -1", {{3, 5}}, [](const V& x) { return mean(x[0], {-1}); }},
      {"max axis 1", {{4, 5}}, [](const V& x) { return max(x[0], {1}); }},
      {"min all", {{4, 5}}, [](const V& x) { return min(x[0]); }},
      {"var unbiased", {{3, 6}}, [](const V& x) { return var(x[0], {1}); }},
      {"var population keepdim", {{2, 3, 4}}, [](const V& x) { return var(x[0], {0, 2}, true, 0.0); }},
      // matrix products, incl. transposed operands and broadcast batches
      {"matmul", {{3, 4}, {4, 5}}, [](const V& x) { return matmul(x[0], x[1]); }},
      {"matmul a·bᵀ", {{3, 4}, {5, 4}}, [](const V& x) { return matmul(x[0], transpose(x[1], 0, 1)); }},
      {"matmul aᵀ·b", {{4, 3}, {4, 5}}, [](const V& x) { return matmul(transpose(x[0], 0, 1), x[1]); }},
      {"matmul batched broadcast", {{2, 3, 4}, {4, 2}}, [](const V& x) { return matmul(x[0], x[1]); }},
      {"matmul batch 1 vs 2", {{1, 3, 4}, {2, 4, 1}}, [](const V& x) { return matmul(x[0], x[1]); }},
      // softmax
      {"softmax last", {{3, 5}}, [](const V& x) { return softmax(x[0], -1); }},
      {"softmax axis 0", {{4, 3}}, [](const V& x) { return softmax(x[0], 0); }},
      {"log_softmax", {{2, 3, 4}}, [](const V& x) { return log_softmax(x[0], 1); }},
      // convolution: padding, stride, dilation, 1x1, non-square kernels, with and without bias
      {"conv2d 3x3 pad 1", {{2, 3, 5, 4}, {4, 3, 3, 3}, {4}},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {1, 1, 1}); }},
      {"conv2d 3x3 stride 2", {{1, 2, 7, 6}, {3, 2, 3, 3}, {3}},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {2, 1, 1}); }},
      {"conv2d 1x1 no bias", {{2, 3, 3, 3}, {2, 3, 1, 1}},
       [](const V& x) { return conv2d(x[0], x[1], Variable(), {1, 0, 1}); }},
      {"conv2d 2x3 dilation 2 pad 2", {{1, 2, 6, 7}, {2, 2, 2, 3}, {2}},
       [](const V& x) { return conv2d(x[0], x[1], x[2], {1, 2, 2}); }},
      // group norm (+ SiLU), attention, upsampling
      {"group_norm", {{2, 4, 3, 3}, {4}, {4}},
       [](const V& x) { return group_norm(x[0], 2, x[1], x[2], 1e-5, false); }},
      {"group_norm + silu", {{2, 6, 2, 3}, {6}, {6}},
       [](const V& x) { return group_norm(x[0], 3, x[1], x[2], 1e-5, true); }},
      // recomputing ops: a fresh generator per call, so every evaluation drops the same elements
      {"dropout", {{3, 4, 5}}, [](const V& x) { Generator g(11); return dropout(x[0], 0.3, g); }},
      {"group_norm_silu_conv2d", {{2, 4, 5, 4}, {4}, {4}, {3, 4, 3, 3}, {3}},
       [](const V& x) { return group_norm_silu_conv2d(x[0], {2, 1e-5}, x[1], x[2], 0.0, nullptr, x[3], x[4], {1, 1, 1}); }},
      {"group_norm_silu_conv2d + per-image bias", {{2, 4, 5, 4}, {4}, {4}, {3, 4, 3, 3}, {3}, {2, 3}},
       [](const V& x) {
         return group_norm_silu_conv2d(x[0], {2, 1e-5}, x[1], x[2], 0.0, nullptr, x[3], x[4], {1, 1, 1}, x[5]);
       }},
      {"group_norm_silu_conv2d + per-image bias, Winograd's sizes", {{1, 16, 3, 3}, {16}, {16}, {16, 16, 3, 3}, {16}, {1, 16}},
       [](const V& x) {
         return group_norm_silu_conv2d(x[0], {4, 1e-5}, x[1], x[2], 0.0, nullptr, x[3], x[4], {1, 1, 1}, x[5]);
       }},
      {"group_norm_silu_conv2d + dropout, stride 2", {{2, 4, 5, 4}, {4}, {4}, {3, 4, 3, 3}, {3}},
       [](const V& x) {
         Generator g(5);
         return group_norm_silu_conv2d(x[0], {2, 1e-5}, x[1], x[2], 0.25, &g, x[3], x[4], {2, 1, 1});
       }},
      {"attention", {{2, 5, 3}, {2, 5, 3}, {2, 5, 3}},
       [](const V& x) { return attention(x[0], x[1], x[2], 0.7); }},
      {"upsample_nearest2x", {{2, 3, 2, 3}}, [](const V& x) { return upsample_nearest2x(x[0]); }},
      {"upsample_nearest2x_conv2d", {{1, 2, 2, 3}, {3, 2, 3, 3}, {3}},
       [](const V& x) { return upsample_nearest2x_conv2d(x[0], x[1], x[2], {1, 1, 1}); }},
      {"cross_entropy", {{4, 5}},
       [](const V& x) { return nn::cross_entropy(x[0], Tensor::from_vector<std::int64_t>({0, 4, 2, 2}, {4})); }},
      // views and joins
      {"reshape", {{3, 4}}, [](const V& x) { return mul(reshape(x[0], {2, 6}), reshape(x[0], {2, 6})); }},
      {"permute", {{2, 3, 4}}, [](const V& x) { return permute(x[0], {2, 0, 1}); }},
      {"narrow", {{5, 3}}, [](const V& x) { return narrow(x[0], 0, 1, 3); }},
      {"slice step 2", {{3, 7}}, [](const V& x) { return slice(x[0], 1, 1, 7, 2); }},
      {"expand", {{3, 1}}, [](const V& x) { return expand(x[0], {2, 3, 4}); }},
      {"squeeze/unsqueeze", {{3, 1, 2}}, [](const V& x) { return unsqueeze(squeeze(x[0], 1), 0); }},
      {"contiguous", {{3, 4}}, [](const V& x) { return contiguous(transpose(x[0], 0, 1)); }},
      {"concat", {{2, 3}, {4, 3}}, [](const V& x) { return concat({x[0], x[1]}, 0); }},
      {"stack", {{2, 3}, {2, 3}}, [](const V& x) { return stack({x[0], x[1]}, 1); }},
      {"split", {{5, 2}}, [](const V& x) {
         auto pieces = split(x[0], {2, 3}, 0);
         return concat({mul(pieces[1], 2.0), pieces[0]}, 0);
       }},
      {"index_select repeated", {{4, 3}}, [](const V& x) { return index_select(x[0], 0, index_tensor({2, 0, 2}, {3})); }},
      {"gather", {{3, 4}}, [](const V& x) { return gather(x[0], 1, index_tensor({0, 3, 3, 1, 2, 0}, {3, 2})); }},
      {"to float32 and back", {{3, 4}},
       [](const V& x) { return to_dtype(to_dtype(x[0], DType::Float32), DType::Float64); }, {}, 1e-2, 1e-4},
  };
  return table;
}

Tensor make_input(const Shape& shape, Domain domain, std::uint64_t seed) {
  return domain == Domain::Positive ? uniform_tensor(shape, seed, 0.5, 2.0) : random_tensor(shape, seed);
}

}  // namespace

TEST_CASE("every differentiable op passes the gradient checker in every layout") {
  const std::vector<std::pair<const char*, Tensor (*)(const Tensor&)>> layouts = {
      {"contiguous", [](const Tensor& t) { return t; }},
      {"transposed storage", as_transposed_storage},
      {"strided slice", as_strided_slice}};
  std::uint64_t seed = 100;
  for (const GradientCase& entry : cases()) {
    for (const auto& [layout_name, layout] : layouts) {
      std::vector<Tensor> inputs;
      for (std::size_t i = 0; i < entry.shapes.size(); ++i) {
        const Domain domain = i < entry.domains.size() ? entry.domains[i] : Domain::Any;
        inputs.push_back(layout(make_input(entry.shapes[i], domain, ++seed)));
      }
      GradientCheckOptions options;
      options.step = entry.step;
      options.absolute_tolerance = entry.tolerance;
      options.relative_tolerance = entry.tolerance;
      options.kinks = entry.kinks;
      const GradientCheckResult result = check_gradients(entry.function, inputs, options);
      INFO(entry.name, " [", std::string(layout_name), "]: ", result.message);
      CHECK(result.passed);
      CHECK(result.checked > 0);
    }
  }
}

TEST_CASE("the four-point stencil agrees too, with a larger step") {
  GradientCheckOptions options;
  options.stencil_points = 4;
  options.step = 1e-3;
  const auto result = check_gradients([](const V& x) { return tanh(mul(x[0], x[0])); }, {random_tensor({4, 4}, 7)}, options);
  INFO(result.message);
  CHECK(result.passed);
}

TEST_CASE("the gradient checker catches a wrong gradient and honours kinks") {
  // An op whose declared gradient is off by a factor of 2.
  auto wrong_square = [](const V& x) {
    SavedTensor input(x[0].value(), "wrong_square");
    return Variable::from_op(square(x[0].value()), "wrong_square", {x[0]},
                             [input](const Tensor& g) { return std::vector<Tensor>{mul(g, mul(input.get(), 4.0))}; });
  };
  const auto result = check_gradients(wrong_square, {random_tensor({3}, 1)});
  CHECK_FALSE(result.passed);
  CHECK(result.message.find("wrong") == std::string::npos);  // names the element, not the op
  CHECK(result.message.find("element") != std::string::npos);

  // abs at exactly 0 is a kink: skipped when declared.
  const Tensor at_kink = Tensor::from_vector<double>({0.0, 1.0, -2.0}, {3});
  GradientCheckOptions options;
  options.kinks = {0.0};
  const auto skipped = check_gradients([](const V& x) { return abs(x[0]); }, {at_kink}, options);
  CHECK(skipped.passed);
  CHECK(skipped.skipped == 1);
  CHECK(skipped.checked == 2);
}

}  // namespace ddpm::testing
