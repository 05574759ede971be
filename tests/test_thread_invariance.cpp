// Same inputs, same bits on 1 and 2 threads, for every parallel kernel.
#include "tests/test_support.hpp"

namespace ddpm::testing {
namespace {

template <class Op>
void check_thread_invariance(const char* name, Op&& op) {
  set_num_threads(1);
  const Tensor one = op();
  set_num_threads(2);
  const Tensor two = op();
  set_num_threads(0);
  INFO(std::string(name));  // a bare const char* is logged as its address
  CHECK(bitwise_equal(one, two));
}

}  // namespace

TEST_CASE("kernels give bitwise identical results on 1 and 2 threads") {
  const Tensor big = random_tensor({3, 1 << 18}, 71, DType::Float32);
  const Tensor other = random_tensor({3, 1 << 18}, 72, DType::Float32);
  check_thread_invariance("silu", [&] { return silu(big); });
  check_thread_invariance("exp strided", [&] { return exp(as_transposed_storage(big)); });
  check_thread_invariance("mul", [&] { return mul(big, other); });
  check_thread_invariance("add broadcast", [&] { return add(big, other.narrow(0, 0, 1)); });
  check_thread_invariance("sum all", [&] { return sum(big); });
  check_thread_invariance("sum rows", [&] { return sum(big, {1}); });
  check_thread_invariance("sum columns", [&] { return sum(big, {0}); });
  check_thread_invariance("max", [&] { return max(big, {1}); });
  check_thread_invariance("var", [&] { return var(big, {1}); });
  check_thread_invariance("softmax", [&] { return softmax(big.reshape({-1, 1000 + 24}), -1); });
  const Tensor a = random_tensor({300, 200}, 73, DType::Float32), b = random_tensor({200, 500}, 74, DType::Float32);
  check_thread_invariance("matmul", [&] { return matmul(a, b); });
  const Tensor big_a = random_tensor({700, 600}, 75, DType::Float32), big_b = random_tensor({600, 530}, 76, DType::Float32);
  check_thread_invariance("matmul 700x600x530", [&] { return matmul(big_a, big_b.transpose(0, 1).contiguous().transpose(0, 1)); });
  // Three wide, deep products: independent tasks on one thread, shared B panels on two
  // (fewer batches than 2 x threads), both over the same deep depth blocks (520 columns:
  // wide for AVX-512's NR = 32 too).
  const Tensor wide_a = random_tensor({3, 300, 1100}, 79, DType::Float32), wide_b = random_tensor({3, 1100, 520}, 80, DType::Float32);
  check_thread_invariance("batched wide matmul", [&] { return matmul(wide_a, wide_b); });
  const Tensor batched = random_tensor({8, 49, 64}, 77, DType::Float32);
  check_thread_invariance("batched matmul", [&] { return matmul(batched, batched.transpose(1, 2)); });
  const Tensor image = random_tensor({8, 32, 14, 14}, 78, DType::Float32);
  // Every convolution path: strided (phases for the input gradient), Winograd (3x3 stride
  // 1, >= 16 channels), stride 1 on one image with 8 inputs (the in-place path splits the
  // image's pixels by the thread count), two outputs (the direct kernels of a U-Net's conv_out).
  struct ConvolutionCase {
    const char* name;
    Shape input, weight;
    Convolution2dOptions options;
  };
  std::uint64_t seed = 79;
  for (const ConvolutionCase& c : {ConvolutionCase{"stride 2", {8, 32, 14, 14}, {64, 32, 3, 3}, {2, 1, 1}},
                                   ConvolutionCase{"Winograd", {8, 32, 7, 7}, {48, 32, 3, 3}, {1, 1, 1}},
                                   ConvolutionCase{"one image", {1, 8, 14, 14}, {64, 8, 3, 3}, {1, 1, 1}},
                                   ConvolutionCase{"two outputs", {8, 32, 14, 14}, {2, 32, 3, 3}, {1, 1, 1}}}) {
    const Tensor x = random_tensor(c.input, ++seed, DType::Float32), w = random_tensor(c.weight, ++seed, DType::Float32);
    const Tensor upstream = random_tensor(conv2d(x, w, Tensor(), c.options).shape(), ++seed, DType::Float32);
    INFO("conv2d ", c.name);
    check_thread_invariance("conv2d", [&] { return conv2d(x, w, Tensor(), c.options); });
    check_thread_invariance("conv2d input gradient", [&] { return conv2d_input_gradient(upstream, w, x.shape(), c.options); });
    check_thread_invariance("conv2d weight gradient",
                            [&] { return conv2d_weight_gradient(upstream, x, w.shape(), c.options); });
  }
  const Tensor gamma = random_tensor({32}, 83, DType::Float32), beta = random_tensor({32}, 84, DType::Float32);
  const GroupNormOutput normed = group_norm(image, 8, gamma, beta, 1e-5, true);
  check_thread_invariance("group norm + silu", [&] { return group_norm(image, 8, gamma, beta, 1e-5, true).output; });
  check_thread_invariance("group norm backward", [&] {
    const auto gradients = group_norm_backward(image, image, normed.mean, normed.inverse_std, 8, gamma, beta, true);
    return concat({gradients.input.flatten(), gradients.gamma, gradients.beta}, 0);
  });
  const Tensor weight = random_tensor({48, 32, 3, 3}, 86, DType::Float32), bias = random_tensor({48}, 87, DType::Float32);
  const Tensor image_bias = random_tensor({8, 48}, 88, DType::Float32);
  check_thread_invariance("group_norm_silu_conv2d for inference, with a per-image bias", [&] {
    return group_norm_silu_conv2d(image, 8, gamma, beta, 1e-5, weight, bias, {1, 1, 1}, image_bias);
  });
  check_thread_invariance("upsample_nearest2x_conv2d for inference",
                          [&] { return upsample_nearest2x_conv2d(image, weight, bias, {1, 1, 1}); });
  const Tensor tokens = random_tensor({8, 49, 64}, 85, DType::Float32);
  check_thread_invariance("attention", [&] { return attention(tokens, tokens, tokens, 0.125); });
  check_thread_invariance("attention backward", [&] {
    const auto gradients = attention_backward(tokens, tokens, tokens, tokens, 0.125);
    return concat({gradients.query, gradients.key, gradients.value}, 0);
  });
  check_thread_invariance("randn", [] {
    Generator generator(5);
    return randn({1 << 20}, generator);
  });
}

TEST_CASE("a whole forward and backward is thread-count invariant") {
  auto run = [] {
    Variable w(random_tensor({64, 32}, 81, DType::Float32), true);
    Variable x(random_tensor({128, 64}, 82, DType::Float32));
    Variable loss = mean(square(silu(matmul(x, w))));
    loss.backward();
    return concat({loss.value().reshape({1}), w.grad().flatten()}, 0);
  };
  check_thread_invariance("mlp step", run);
}

}  // namespace ddpm::testing
