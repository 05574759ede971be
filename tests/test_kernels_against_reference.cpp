// Each fast kernel against the plain reference kept beside it (the idea of ggml's
// test-backend-ops): one table in which every case states what it computes on the fast
// path, what the reference computes, and the tolerance; the table runs once for every GEMM
// microkernel this CPU has (each in a GemmKernelScope), on odd sizes (not a multiple of any
// vector width, panel or chunk) and on strided inputs. Properties that are not a
// comparison with a reference (layouts, rounding against float64, bitwise equalities,
// edge cases) follow as their own tests.
#include <functional>

#include "tests/test_support.hpp"

#include "tensor/vector_sigmoid.hpp"

namespace ddpm::testing {
namespace {

using Results = std::vector<Tensor>;

struct KernelCase {
  std::string name;
  std::function<Results()> fast;
  std::function<Results()> reference;  // empty: `fast` again, under ReferenceKernels
  double atol, rtol;
};

const std::vector<Shape> odd_shapes = {{1}, {7}, {17}, {31, 33}, {3, 1, 65}, {100003}};

void add_elementwise_cases(std::vector<KernelCase>& table) {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : odd_shapes) {
      const std::string suffix = " " + shape_string(shape) + " " + std::string(dtype_name(dtype));
      const Tensor x = random_tensor(shape, 11, dtype);
      const Tensor positive = uniform_tensor(shape, 12, 0.1, 4.0, dtype);
      for (UnaryOp op : {UnaryOp::Negate, UnaryOp::Abs, UnaryOp::Exp, UnaryOp::Square, UnaryOp::Tanh,
                         UnaryOp::Sigmoid, UnaryOp::Silu, UnaryOp::Sign}) {
        table.push_back({std::string(op_name(op)) + suffix, [=] { return Results{unary(op, x)}; }, {}, 1e-6, 1e-5});
        table.push_back({std::string(op_name(op)) + suffix + " transposed storage",
                         [=] { return Results{unary(op, as_transposed_storage(x))}; }, {}, 1e-6, 1e-5});
      }
      for (UnaryOp op : {UnaryOp::Log, UnaryOp::Sqrt, UnaryOp::Rsqrt})
        table.push_back({std::string(op_name(op)) + suffix, [=] { return Results{unary(op, positive)}; }, {}, 1e-6, 1e-5});
      table.push_back({"pow" + suffix, [=] { return Results{pow(positive, 1.7)}; }, {}, 1e-6, 1e-5});
    }
  }
  for (const Shape& shape : odd_shapes) {
    const Tensor a = random_tensor(shape, 21, DType::Float32);
    const Tensor b = uniform_tensor(shape, 22, 0.5, 2.0, DType::Float32);
    const Tensor scalar = Tensor::scalar(1.25);
    for (BinaryOp op : {BinaryOp::Add, BinaryOp::Subtract, BinaryOp::Multiply, BinaryOp::Divide, BinaryOp::Maximum,
                        BinaryOp::Minimum, BinaryOp::Less, BinaryOp::GreaterEqual, BinaryOp::Equal}) {
      const std::string name = std::string(op_name(op)) + " " + shape_string(shape);
      table.push_back({name, [=] { return Results{binary(op, a, b)}; }, {}, 0, 1e-6});
      table.push_back({name + " tensor-scalar", [=] { return Results{binary(op, a, scalar)}; }, {}, 0, 1e-6});
      table.push_back({name + " scalar-tensor", [=] { return Results{binary(op, scalar, b)}; }, {}, 0, 1e-6});
      table.push_back({name + " strided", [=] { return Results{binary(op, as_strided_slice(a), b)}; }, {}, 0, 1e-6});
    }
  }
  const Tensor rows = random_tensor({5, 1, 9}, 23, DType::Float32), columns = random_tensor({4, 1}, 24, DType::Float32);
  table.push_back({"add broadcast", [=] { return Results{add(rows, columns)}; }, {}, 0, 1e-6});
  // Broadcasts along rows of at least 16 (a per-channel value added to NCHW, a bias added to
  // [N, HW, C]), which run row by row through the vector kernel.
  const Tensor nchw = random_tensor({3, 5, 4, 6}, 25, DType::Float32);
  const Tensor per_channel = random_tensor({1, 5, 1, 1}, 26, DType::Float32);
  const Tensor per_image_channel = random_tensor({3, 5, 1, 1}, 27, DType::Float32);
  const Tensor tokens = random_tensor({2, 7, 20}, 28, DType::Float32), bias = random_tensor({20}, 29, DType::Float32);
  table.push_back({"add [3, 5, 4, 6] + [1, 5, 1, 1]", [=] { return Results{add(nchw, per_channel)}; }, {}, 0, 1e-6});
  table.push_back({"sub [3, 5, 1, 1] - [3, 5, 4, 6]", [=] { return Results{sub(per_image_channel, nchw)}; }, {}, 0, 1e-6});
  table.push_back({"mul [2, 7, 20] * [20]", [=] { return Results{mul(tokens, bias)}; }, {}, 0, 1e-6});
  table.push_back({"div [20] / transposed [2, 7, 20]", [=] { return Results{div(bias, as_transposed_storage(tokens))}; }, {}, 0, 1e-6});
}

// Strided copies (clone of a view): whole rows where the last axes are contiguous on both
// sides, elements otherwise; float64 to float32 on the way for one of each.
void add_copy_cases(std::vector<KernelCase>& table) {
  const Tensor nchw = random_tensor({3, 5, 7, 9}, 35, DType::Float32);
  const Tensor wide = random_tensor({2, 40, 17}, 36, DType::Float64);
  const std::vector<std::pair<std::string, Tensor>> views = {
      {"channels 1-3 of [3, 5, 7, 9]", nchw.narrow(1, 1, 3)},
      {"[3, 5, 7, 9] with N and C swapped", nchw.transpose(0, 1)},
      {"[3, 5, 7, 9] with H and W swapped", nchw.transpose(2, 3)},
      {"columns 3-19 of [2, 40, 17] float64", wide.narrow(1, 3, 17)},
      {"[2, 40, 17] with its first two axes swapped", wide.transpose(0, 1)}};
  for (const auto& [name, view] : views) {
    table.push_back({"clone " + name, [=] { return Results{view.clone()}; }, {}, 0, 0});
    table.push_back({"to float32 " + name, [=] { return Results{view.to(DType::Float32)}; }, {}, 0, 0});
  }
}

void add_reduction_cases(std::vector<KernelCase>& table) {
  const Tensor x = random_tensor({6, 7, 33}, 31, DType::Float32);
  for (const Axes& axes : std::vector<Axes>{{}, {0}, {1}, {2}, {0, 1}, {1, 2}, {0, 2}}) {
    const std::string on = " over " + shape_string(Shape(axes.begin(), axes.end()));
    table.push_back({"sum" + on, [=] { return Results{sum(x, axes)}; }, {}, 1e-4, 1e-5});
    table.push_back({"max" + on, [=] { return Results{max(x, axes, true)}; }, {}, 0, 0});
    table.push_back({"min transposed" + on, [=] { return Results{min(as_transposed_storage(x), axes)}; }, {}, 0, 0});
    table.push_back({"sum strided" + on, [=] { return Results{sum(as_strided_slice(x), axes)}; }, {}, 1e-4, 1e-5});
  }
  // A size-1 axis makes a permuted view count as contiguous: the transposed gradient of a
  // [1, HW, C] linear layer's bias once reduced as if it had not been permuted.
  const Tensor single = random_tensor({1, 16, 49}, 33, DType::Float32).transpose(1, 2);
  for (const Axes& axes : std::vector<Axes>{{0, 1}, {1}, {0, 2}, {2}})
    table.push_back({"sum [1, 49, 16] transposed over " + shape_string(Shape(axes.begin(), axes.end())),
                     [=] { return Results{sum(single, axes, true)}; }, {}, 1e-4, 1e-5});
  // Reduced axes that are not adjacent, in a contiguous tensor: reduced a run at a time
  // (a conv bias gradient is NCHW summed over {0, 2, 3}).
  const Tensor nchw = random_tensor({3, 4, 5, 6}, 34, DType::Float32);
  for (const Axes& axes : std::vector<Axes>{{0, 2, 3}, {0, 3}, {1, 3}, {0, 1, 3}, {0, 2}}) {
    const std::string on = " [3, 4, 5, 6] over " + shape_string(Shape(axes.begin(), axes.end()));
    table.push_back({"sum" + on, [=] { return Results{sum(nchw, axes)}; }, {}, 1e-4, 1e-5});
    table.push_back({"max keepdim" + on, [=] { return Results{max(nchw, axes, true)}; }, {}, 0, 0});
  }
  const Tensor big = random_tensor({1000003}, 32, DType::Float32);
  table.push_back({"sum 1M", [=] { return Results{sum(big)}; }, {}, 1e-2, 1e-4});
  for (const Shape& shape : std::vector<Shape>{{7}, {3, 33}, {5, 4, 17}}) {
    const Tensor logits = mul(random_tensor(shape, 41, DType::Float32), 5.0);
    for (std::int64_t axis = 0; axis < static_cast<std::int64_t>(shape.size()); ++axis) {
      const std::string on = " " + shape_string(shape) + " axis " + std::to_string(axis);
      table.push_back({"softmax" + on, [=] { return Results{softmax(logits, axis)}; }, {}, 1e-7, 1e-5});
      table.push_back({"log_softmax" + on, [=] { return Results{log_softmax(logits, axis)}; }, {}, 1e-5, 1e-5});
    }
  }
}

// N <= 4 NR reads A in place (the gathered microkernel), wider products pack it; both with
// several row and depth blocks (KC is 384 for AVX2 and SSE2, 192 for AVX-512), and the
// shared-panel schedule at {300, 64, 800}; {147, 520, 1100} is wide enough for the deep
// depth block (1024 for AVX2 and SSE2, 512 for AVX-512: two or three blocks).
void add_gemm_cases(std::vector<KernelCase>& table) {
  const std::vector<std::array<std::int64_t, 3>> sizes = {{1, 1, 1},     {7, 17, 31},    {33, 1, 7},
                                                          {17, 300, 33}, {145, 40, 500}, {6, 16, 600},
                                                          {150, 130, 700}, {300, 64, 800}, {147, 520, 1100}};
  for (auto [m, n, k] : sizes) {
    const std::string size = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
    for (bool transpose_a : {false, true})
      for (bool transpose_b : {false, true})
        for (float beta : {0.0f, 2.0f}) {
          const Tensor a_storage = random_tensor(transpose_a ? Shape{k, m} : Shape{m, k}, 51, DType::Float32);
          const Tensor b_storage = random_tensor(transpose_b ? Shape{n, k} : Shape{k, n}, 52, DType::Float32);
          const Tensor a = transpose_a ? a_storage.transpose(0, 1) : a_storage;
          const Tensor b = transpose_b ? b_storage.transpose(0, 1) : b_storage;
          const Tensor c0 = random_tensor({m, n}, 53, DType::Float32);
          const auto run = [=](auto multiply) {
            Tensor c = c0.clone();
            multiply(m, n, k, 0.5f, a.data<float>(), a.strides()[0], a.strides()[1], b.data<float>(), b.strides()[0],
                     b.strides()[1], beta, c.data<float>(), n);
            return Results{c};
          };
          table.push_back({"gemm " + size + " transpose a " + std::to_string(transpose_a) + " b " +
                               std::to_string(transpose_b) + " beta " + std::to_string(beta),
                           [=] { return run(gemm<float>); }, [=] { return run(gemm_reference<float>); }, 1e-4, 1e-4});
        }
    // float64 through the same kernel family.
    const Tensor a = random_tensor({m, k}, 54), b = random_tensor({k, n}, 55);
    const auto run = [=](auto multiply) {
      Tensor c = zeros({m, n}, DType::Float64);
      multiply(m, n, k, 1.0, a.data<double>(), k, 1, b.data<double>(), n, 1, 0.0, c.data<double>(), n);
      return Results{c};
    };
    table.push_back({"gemm float64 " + size, [=] { return run(gemm<double>); }, [=] { return run(gemm_reference<double>); },
                     1e-12, 1e-12});
  }
  const Tensor a = random_tensor({2, 1, 5, 7}, 61, DType::Float32), b = random_tensor({3, 7, 9}, 62, DType::Float32);
  table.push_back({"matmul batch broadcast", [=] { return Results{matmul(a, b)}; }, {}, 1e-5, 1e-5});
  table.push_back({"matmul transposed", [=] { return Results{matmul(b.transpose(-1, -2), a.transpose(-1, -2))}; }, {},
                   1e-5, 1e-5});
}

struct ConvolutionCase {
  Shape input, weight;
  Convolution2dOptions options;
};

// Every path of tensor/convolution.cpp, forward and both gradients, against the direct sums.
const std::vector<ConvolutionCase> convolution_cases = {
    {{2, 3, 7, 7}, {5, 3, 3, 3}, {1, 1, 1}},    {{3, 4, 17, 17}, {7, 4, 3, 3}, {2, 1, 1}},
    {{1, 33, 9, 9}, {31, 33, 1, 1}, {1, 0, 1}}, {{2, 2, 8, 11}, {3, 2, 2, 3}, {1, 2, 2}},
    {{2, 5, 10, 10}, {4, 5, 3, 3}, {3, 0, 1}},  {{1, 1, 28, 28}, {32, 1, 3, 3}, {1, 1, 1}},
    {{2, 17, 7, 7}, {17, 17, 3, 3}, {2, 1, 1}},
    // few output channels: the direct path (conv_out of a U-Net), rows longer than its lanes,
    // rows narrower than a vector, dilation
    {{3, 32, 28, 28}, {1, 32, 3, 3}, {1, 1, 1}}, {{2, 5, 9, 37}, {2, 5, 3, 3}, {1, 1, 1}},
    {{2, 4, 12, 20}, {2, 4, 3, 3}, {1, 2, 2}},
    {{2, 3, 11, 13}, {4, 3, 3, 2}, {2, 1, 2}},  {{1, 6, 7, 7}, {3, 6, 1, 1}, {1, 0, 1}},
    // the shifted (in-place) path: outputs not a multiple of a tile, tiles crossing rows,
    // stride, dilation, non-square kernels, a batch small enough to split images
    {{2, 8, 9, 11}, {20, 8, 3, 3}, {1, 1, 1}},  {{2, 12, 13, 10}, {17, 12, 3, 2}, {2, 1, 1}},
    {{3, 10, 12, 12}, {16, 10, 3, 3}, {1, 2, 2}}, {{2, 8, 15, 15}, {9, 8, 3, 3}, {2, 0, 2}},
    {{1, 16, 6, 5}, {33, 16, 3, 3}, {1, 1, 1}},
    // strided input gradients by phases: stride 2 and 3, dilation, a 1x1 kernel whose odd
    // phases get no tap (zeros), an even kernel, odd image sizes
    {{2, 8, 13, 12}, {40, 8, 3, 3}, {2, 1, 1}}, {{2, 9, 11, 14}, {100, 9, 3, 2}, {3, 2, 2}},
    {{1, 8, 9, 9}, {300, 8, 1, 1}, {2, 0, 1}},  {{1, 8, 10, 10}, {40, 8, 4, 4}, {2, 1, 1}},
    // Winograd F(4x4, 3x3) (3x3, stride 1, >= 16 channels each way): odd sizes whose last
    // tiles overhang the output, channel counts not a multiple of a vector or a panel,
    // padding 0 and 2 (the input gradient's padding 2 and 0), many chunks of tiles
    {{2, 17, 7, 7}, {19, 17, 3, 3}, {1, 1, 1}}, {{3, 24, 9, 6}, {32, 24, 3, 3}, {1, 0, 1}},
    {{1, 16, 5, 8}, {16, 16, 3, 3}, {1, 2, 1}}, {{5, 32, 14, 14}, {64, 32, 3, 3}, {1, 1, 1}},
    {{2, 40, 3, 3}, {18, 40, 3, 3}, {1, 1, 1}},
    // ... its weight gradient summing several chunks of tiles (beta = 1) and groups of
    // several small images per slice
    {{2, 16, 24, 23}, {16, 16, 3, 3}, {1, 1, 1}}, {{20, 16, 7, 7}, {24, 16, 3, 3}, {1, 1, 1}},
    // ... and a padding wider than the kernel's reach (tiles of zeros only; the input
    // gradient then takes another path)
    {{1, 16, 5, 6}, {16, 16, 3, 3}, {1, 3, 1}}};

void add_convolution_cases(std::vector<KernelCase>& table) {
  std::uint64_t seed = 900;
  for (const ConvolutionCase& c : convolution_cases) {
    const Tensor x = random_tensor(c.input, ++seed, DType::Float32);
    const Tensor w = random_tensor(c.weight, ++seed, DType::Float32);
    const Tensor b = random_tensor({c.weight[0]}, ++seed, DType::Float32);
    const Tensor g = random_tensor(conv2d_reference(x, w, b, c.options).shape(), ++seed, DType::Float32);
    const std::string name = "conv input " + shape_string(c.input) + " weight " + shape_string(c.weight) + " stride " +
                             std::to_string(c.options.stride) + " padding " + std::to_string(c.options.padding) +
                             " dilation " + std::to_string(c.options.dilation);
    const auto options = c.options;
    const bool winograd = c.weight[2] == 3 && c.weight[3] == 3 && c.options.stride == 1 && c.options.dilation == 1 &&
                          c.weight[0] >= 16 && c.weight[1] >= 16;
    const double tolerance = convolution_tolerance(winograd);
    table.push_back({name + " forward", [=] { return Results{conv2d(x, w, b, options)}; },
                     [=] { return Results{conv2d_reference(x, w, b, options)}; }, tolerance, 1e-4});
    table.push_back({name + " forward, transposed storage, no bias",
                     [=] { return Results{conv2d(as_transposed_storage(x), w, Tensor(), options)}; },
                     [=] { return Results{conv2d_reference(x, w, Tensor(), options)}; }, tolerance, 1e-4});
    table.push_back({name + " input gradient", [=] { return Results{conv2d_input_gradient(g, w, x.shape(), options)}; },
                     [=] { return Results{conv2d_input_gradient_reference(g, w, x.shape(), options)}; }, tolerance,
                     1e-4});
    table.push_back({name + " weight gradient", [=] { return Results{conv2d_weight_gradient(g, x, w.shape(), options)}; },
                     [=] { return Results{conv2d_weight_gradient_reference(g, x, w.shape(), options)}; }, 1e-3, 1e-4});
  }
}

// Channel rows (H·W) shorter than a vector, exactly one, and every overhang 1-7 past whole
// vectors (the overlapping last vector), as well as the U-Net's 7 x 7 and 28 x 28. (Groups
// of two or more values: a one-value group has zero variance, and the forward's
// x·(γ/σ) + shift form, PyTorch's too, then loses digits to cancellation at 1/σ = 316.)
void add_normalization_and_attention_cases(std::vector<KernelCase>& table) {
  for (const Shape& shape : std::vector<Shape>{{2, 8, 7, 7}, {3, 32, 28, 28}, {1, 16, 5, 3}, {2, 16, 1, 1},
                                               {1, 8, 2, 3}, {1, 8, 2, 4}, {1, 8, 3, 3}, {1, 8, 2, 5}, {1, 8, 1, 11},
                                               {1, 8, 3, 4}, {1, 8, 1, 13}, {1, 8, 2, 7}, {1, 8, 17, 1}}) {
    for (bool silu : {false, true}) {
      const Tensor x = add(mul(random_tensor(shape, 1001, DType::Float32), 3.0), 0.5);
      const Tensor gamma = random_tensor({shape[1]}, 1002, DType::Float32);
      const Tensor beta = random_tensor({shape[1]}, 1003, DType::Float32);
      const Tensor g = random_tensor(shape, 1004, DType::Float32);
      const std::string name = "group norm " + shape_string(shape) + (silu ? " + silu" : "");
      const auto fast_forward = [=] { return group_norm(x, 8, gamma, beta, 1e-5, silu); };
      const auto reference_forward = [=] { return group_norm_reference(x, 8, gamma, beta, 1e-5, silu); };
      const auto fast_backward = [=] {
        const GroupNormOutput y = fast_forward();
        return group_norm_backward(g, x, y.mean, y.inverse_std, 8, gamma, beta, silu);
      };
      const auto reference_backward = [=] { return group_norm_backward_reference(g, x, 8, gamma, beta, 1e-5, silu); };
      table.push_back({name + " output", [=] { return Results{fast_forward().output}; },
                       [=] { return Results{reference_forward().output}; }, 1e-5, 1e-4});
      table.push_back({name + " statistics", [=] { return Results{fast_forward().mean, fast_forward().inverse_std}; },
                       [=] { return Results{reference_forward().mean, reference_forward().inverse_std}; }, 1e-6, 1e-5});
      table.push_back({name + " input gradient", [=] { return Results{fast_backward().input}; },
                       [=] { return Results{reference_backward().input}; }, 1e-4, 1e-3});
      table.push_back({name + " scale and shift gradients",
                       [=] { return Results{fast_backward().gamma, fast_backward().beta}; },
                       [=] { return Results{reference_backward().gamma, reference_backward().beta}; }, 1e-3, 1e-4});
    }
  }
  // Fused attention against the composition matmul + softmax + matmul, differentiated by the engine.
  for (const Shape& shape : std::vector<Shape>{{3, 49, 64}, {2, 17, 7}, {1, 200, 33}}) {
    const Tensor q = random_tensor(shape, 1101), k = random_tensor(shape, 1102), v = random_tensor(shape, 1103);
    const Tensor g = random_tensor(shape, 1104);
    const double scale = 1.0 / std::sqrt(static_cast<double>(shape[2]));
    const auto composed = [=] {
      Variable vq(q, true), vk(k, true), vv(v, true);
      Variable y = matmul(softmax(mul(matmul(vq, transpose(vk, 1, 2)), scale), -1), vv);
      y.backward(g);
      return Results{y.value(), vq.grad(), vk.grad(), vv.grad()};
    };
    table.push_back({"attention " + shape_string(shape), [=] { return Results{attention(q, k, v, scale)}; },
                     [=] { return Results{composed()[0]}; }, 1e-12, 1e-10});
    table.push_back({"attention backward " + shape_string(shape),
                     [=] {
                       const AttentionGradients d = attention_backward(g, q, k, v, scale);
                       return Results{d.query, d.key, d.value};
                     },
                     [=] {
                       const Results all = composed();
                       return Results{all[1], all[2], all[3]};
                     },
                     1e-12, 1e-9});
  }
}

std::vector<KernelCase> kernel_cases() {
  std::vector<KernelCase> table;
  add_elementwise_cases(table);
  add_reduction_cases(table);
  add_copy_cases(table);
  add_gemm_cases(table);
  add_convolution_cases(table);
  add_normalization_and_attention_cases(table);
  return table;
}

}  // namespace

TEST_CASE("every fast kernel matches its reference, with every GEMM microkernel") {
  const std::vector<KernelCase> table = kernel_cases();
  const std::string kernel_at_start = active_gemm_kernel();
  for (const std::string& kernel : available_gemm_kernels()) {
    GemmKernelScope scope(kernel);
    for (const KernelCase& c : table) {
      const Results fast = c.fast();
      Results reference;
      if (c.reference) {
        reference = c.reference();
      } else {
        ReferenceKernels reference_path;
        reference = c.fast();
      }
      REQUIRE(fast.size() == reference.size());
      for (std::size_t i = 0; i < fast.size(); ++i) {
        INFO("kernel ", kernel, ": ", c.name, ", result ", i);
        CHECK(closeness(fast[i], reference[i], c.atol, c.rtol) <= 1.0);
      }
    }
  }
  CHECK(active_gemm_kernel() == kernel_at_start);  // each scope restored the kernel it found
  CHECK_THROWS_WITH_AS(select_gemm_kernel("no-such-kernel"), doctest::Contains("not available"), TensorError);
  CHECK(active_gemm_kernel() == kernel_at_start);
}

TEST_CASE("A packing lays each panel's rows side by side, zero past the last row, for every kernel height") {
  // Row-major A takes a fast path for full panels of 6 (AVX2, SSE2) and 12 (AVX-512) rows;
  // both run here whatever the CPU, against the layout written out: panel q holds rows
  // q·MR .. q·MR + MR - 1, depth p's values at [p·MR + r].
  const std::int64_t row_stride = 41, depths = 37, first_row = 2, first_depth = 3;
  const Tensor a = random_tensor({60, row_stride}, 58, DType::Float32);
  const float* data = a.data<float>();
  for (std::int64_t mr : {6, 12}) {
    for (std::int64_t rows : {1, 6, 12, 13, 25, 48}) {
      const std::int64_t panels = (rows + mr - 1) / mr;
      std::vector<float> packed(static_cast<std::size_t>(panels * mr * depths), -1.0f);
      pack_a_strided<float>(data, row_stride, 1, first_row, first_depth, rows, depths, mr, packed.data());
      std::int64_t wrong = 0;
      for (std::int64_t q = 0; q < panels; ++q)
        for (std::int64_t p = 0; p < depths; ++p)
          for (std::int64_t r = 0; r < mr; ++r) {
            const std::int64_t row = q * mr + r;
            const float expected = row < rows ? data[(first_row + row) * row_stride + first_depth + p] : 0.0f;
            wrong += packed[static_cast<std::size_t>((q * depths + p) * mr + r)] != expected;
          }
      INFO("mr ", mr, " rows ", rows);
      CHECK(wrong == 0);
    }
  }
}

TEST_CASE("gemm with beta 0 ignores whatever C held, NaN included") {
  Tensor c = full({7, 9}, std::nan(""));
  const Tensor a = random_tensor({7, 5}, 56, DType::Float32), b = random_tensor({5, 9}, 57, DType::Float32);
  gemm<float>(7, 9, 5, 1.0f, a.data<float>(), 5, 1, b.data<float>(), 9, 1, 0.0f, c.data<float>(), 9);
  CHECK(closeness(c, matmul(a, b), 1e-5, 1e-5) <= 1.0);
}

TEST_CASE("Winograd convolutions round within their bounds at the U-Net's depths") {
  // F(2x2, 3x3) adds and halves before and after its products; in float32 its error
  // against a float64 reference must stay at the direct sum's level (measured: rms 2-3.5e-7
  // of unit-scale results for the forward, input and weight gradients; the GEMM paths
  // 1.4-2.7e-7), not grow with the transforms. F(4x4, 3x3) multiplies by up to 8 and
  // divides by 24 (measured: rms 1.3-1.8e-6 for the forward and input gradient, 0.6-1.5e-6
  // for the weight gradient).
  auto relative_rms_error = [](const Tensor& fast, const Tensor& exact) {
    const auto a = fast.to_vector<double>(), b = exact.to_vector<double>();
    double error = 0, value = 0;
    for (std::size_t i = 0; i < a.size(); ++i) error += (a[i] - b[i]) * (a[i] - b[i]), value += b[i] * b[i];
    return std::sqrt(error / value);
  };
  for (const auto& [tile, bound] : {std::pair{2, 6e-7}, std::pair{4, 3e-6}})
    for (const Shape& input : std::vector<Shape>{{4, 128, 7, 7}, {2, 64, 14, 14}, {2, 32, 28, 28}}) {
      WinogradTileScope scope(tile);
      const Tensor x = random_tensor(input, 1100, DType::Float32);
      const Tensor w = mul(random_tensor({64, input[1], 3, 3}, 1101, DType::Float32), 1.0 / std::sqrt(9.0 * input[1]));
      const Tensor dy = random_tensor({input[0], 64, input[2], input[3]}, 1102, DType::Float32);
      const Tensor x64 = x.to(DType::Float64), w64 = w.to(DType::Float64), dy64 = dy.to(DType::Float64);
      const Convolution2dOptions options{1, 1, 1};
      const double forward = relative_rms_error(conv2d(x, w, Tensor(), options),
                                                conv2d_reference(x64, w64, Tensor(), options));
      const double input_gradient = relative_rms_error(conv2d_input_gradient(dy, w, x.shape(), options),
                                                       conv2d_input_gradient_reference(dy64, w64, x.shape(), options));
      const double weight_gradient = relative_rms_error(conv2d_weight_gradient(dy, x, w.shape(), options),
                                                        conv2d_weight_gradient_reference(dy64, x64, w.shape(), options));
      INFO("tile ", tile, " input ", shape_string(input), ": forward ", forward, ", input gradient ", input_gradient,
           ", weight gradient ", weight_gradient);
      CHECK(forward < bound);
      CHECK(input_gradient < bound);
      CHECK(weight_gradient < bound);
      // The larger tile rounds more, as its transforms say it must: a bound on it that the
      // smaller tile's error also met would not tell the two apart.
      if (tile == 4) CHECK(forward > 6e-7);
    }
}

TEST_CASE("the vector exponential behind GroupNorm's SiLU is within 1e-7 of exp, and clamps instead of overflowing") {
  using Batch = xsimd::batch<float>;
  constexpr std::size_t width = Batch::size;
  double worst = 0;
  alignas(64) float arguments[width], results[width];
  // A grid over the whole unclamped range, offset per lane so every lane sees every scale.
  for (double start = -87.0; start < 88.0; start += 0.0017 * width) {
    for (std::size_t lane = 0; lane < width; ++lane)
      arguments[lane] = static_cast<float>(std::min(start + 0.0017 * lane, 88.0));
    exp_of_clamped(Batch::load_aligned(arguments)).store_aligned(results);
    for (std::size_t lane = 0; lane < width; ++lane) {
      const double exact = std::exp(static_cast<double>(arguments[lane]));
      worst = std::max(worst, std::abs(results[lane] - exact) / exact);
    }
  }
  CHECK(worst < 1.5e-7);
  const auto first_lane = [&](Batch values) {
    values.store_aligned(results);
    return results[0];
  };
  // Beyond the range the argument is clamped: finite, and the sigmoid saturates to 0 and 1.
  CHECK(first_lane(exp_of_clamped(Batch(1000.0f))) == doctest::Approx(std::exp(88.0)).epsilon(1e-6));
  CHECK(first_lane(exp_of_clamped(Batch(-1000.0f))) == doctest::Approx(std::exp(-87.0)).epsilon(1e-6));
  CHECK(first_lane(sigmoid_of_negated(Batch(-1000.0f))) == 1.0f);
  CHECK(first_lane(sigmoid_of_negated(Batch(1000.0f))) < 1e-38f);
  CHECK(first_lane(sigmoid_of_negated(Batch(0.0f))) == 0.5f);
}

TEST_CASE("group_norm_silu_conv2d equals GroupNorm+SiLU, dropout and conv2d in a row, bit for bit") {
  const Tensor x = random_tensor({3, 8, 9, 7}, 1, DType::Float32), gamma = random_tensor({8}, 2, DType::Float32),
               beta = random_tensor({8}, 3, DType::Float32), weight = random_tensor({5, 8, 3, 3}, 4, DType::Float32),
               bias = random_tensor({5}, 5, DType::Float32), upstream = random_tensor({3, 5, 9, 7}, 6, DType::Float32);
  auto run = [&](bool fused) {
    std::vector<Variable> leaves;
    for (const Tensor& t : {x, gamma, beta, weight, bias}) leaves.emplace_back(t, true);
    Generator generator(77);
    Variable y;
    if (fused) {
      y = group_norm_silu_conv2d(leaves[0], {4, 1e-5}, leaves[1], leaves[2], 0.1, &generator, leaves[3], leaves[4], {1, 1, 1});
    } else {
      y = conv2d(dropout(group_norm(leaves[0], 4, leaves[1], leaves[2], 1e-5, true), 0.1, generator), leaves[3], leaves[4], {1, 1, 1});
    }
    sum(mul(y, Variable(upstream))).backward();
    std::vector<Tensor> results = {y.value()};
    for (const Variable& leaf : leaves) results.push_back(leaf.grad());
    results.push_back(Tensor::scalar(static_cast<double>(generator.offset()), DType::Float64));
    return results;
  };
  const auto fused = run(true), separate = run(false);
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("result ", i, " (0: output, 1-5: gradients of x, gamma, beta, weight, bias, 6: generator offset)");
    CHECK(bitwise_equal(fused[i], separate[i]));
  }
  // Dropout really dropped something, and keeps its expectation.
  Generator generator(3);
  const Tensor dropped = dropout(Variable(full({100000}, 1.0)), 0.1, generator).value();
  CHECK(mean(dropped).item() == doctest::Approx(1.0).epsilon(0.01));
  CHECK(sum(eq(dropped, 0.0)).item() == doctest::Approx(10000).epsilon(0.05));
}

TEST_CASE("inference's group_norm_silu_conv2d and per-image biases equal the separate ops bit for bit, on every path") {
  // The Winograd path normalises the input as it copies it and adds the per-image bias as it
  // writes the output; every other path runs the separate ops. Either way the bits are those
  // of GroupNorm+SiLU, conv2d and add in a row: sizes with one tile and a half, 7 x 7 groups
  // whose vectors straddle channels, 2 x 2 planes shorter than a vector (GroupNorm's padded
  // rows), no padding, and the shapes that go to the shifted, strided and direct paths.
  struct Case {
    Shape input, weight;
    Convolution2dOptions options;
    std::int64_t groups;
  };
  const std::vector<Case> cases = {{{2, 16, 9, 7}, {24, 16, 3, 3}, {1, 1, 1}, 4},
                                   {{3, 32, 28, 28}, {32, 32, 3, 3}, {1, 1, 1}, 8},
                                   {{2, 64, 7, 7}, {64, 64, 3, 3}, {1, 1, 1}, 8},
                                   {{2, 16, 2, 2}, {16, 16, 3, 3}, {1, 1, 1}, 8},
                                   {{2, 24, 6, 6}, {16, 24, 3, 3}, {1, 0, 1}, 3},
                                   {{2, 4, 5, 5}, {8, 4, 3, 3}, {1, 1, 1}, 2},
                                   {{2, 32, 8, 8}, {32, 32, 3, 3}, {2, 1, 1}, 8},
                                   {{2, 32, 8, 8}, {16, 32, 1, 1}, {1, 0, 1}, 8},
                                   {{2, 32, 8, 8}, {2, 32, 3, 3}, {1, 1, 1}, 8}};
  std::uint64_t seed = 4100;
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const Case& c : cases) {
      const std::int64_t channels = c.input[1], outputs = c.weight[0];
      const Tensor x = random_tensor(c.input, ++seed, dtype), weight = random_tensor(c.weight, ++seed, dtype);
      const Tensor gamma = random_tensor({channels}, ++seed, dtype), beta = random_tensor({channels}, ++seed, dtype);
      const Tensor bias = random_tensor({outputs}, ++seed, dtype);
      const Tensor image_bias = random_tensor({c.input[0], outputs}, ++seed, dtype);
      const Tensor per_image = image_bias.view({c.input[0], outputs, 1, 1});
      const Tensor activation = group_norm(x, c.groups, gamma, beta, 1e-5, true).output;
      const Tensor separate = conv2d(activation, weight, bias, c.options);
      INFO(dtype_name(dtype), " input ", shape_string(c.input), " weight ", shape_string(c.weight), " stride ",
           c.options.stride, " padding ", c.options.padding);
      CHECK(bitwise_equal(group_norm_silu_conv2d(x, c.groups, gamma, beta, 1e-5, weight, bias, c.options), separate));
      CHECK(bitwise_equal(group_norm_silu_conv2d(x, c.groups, gamma, beta, 1e-5, weight, bias, c.options, image_bias),
                          add(separate, per_image)));
      CHECK(bitwise_equal(conv2d(x, weight, Tensor(), c.options, image_bias),
                          add(conv2d(x, weight, Tensor(), c.options), per_image)));
      // And the values are right, not merely consistent: against the references in double.
      const Tensor exact = conv2d_reference(group_norm_reference(x.to(DType::Float64), c.groups, gamma.to(DType::Float64),
                                                                 beta.to(DType::Float64), 1e-5, true).output,
                                            weight.to(DType::Float64), bias.to(DType::Float64), c.options);
      const double tolerance = dtype == DType::Float32 ? convolution_tolerance(true) : 1e-10;
      CHECK(closeness(group_norm_silu_conv2d(x, c.groups, gamma, beta, 1e-5, weight, bias, c.options), exact, tolerance,
                      tolerance) <= 1.0);
    }
  // Shapes that do not fit are named.
  const Tensor x = random_tensor({2, 16, 5, 5}, 1, DType::Float32), w = random_tensor({16, 16, 3, 3}, 2, DType::Float32);
  const Tensor affine = random_tensor({16}, 3, DType::Float32);
  CHECK_THROWS_WITH(conv2d(x, w, Tensor(), {1, 1, 1}, random_tensor({2, 8}, 4, DType::Float32)),
                    doctest::Contains("image bias must be [2, 16], got [2, 8]"));
  CHECK_THROWS_WITH(group_norm_silu_conv2d(x, 16, random_tensor({8}, 5, DType::Float32), affine, 1e-5, w, Tensor(), {1, 1, 1}),
                    doctest::Contains("gamma and beta must be [16]"));
  CHECK_THROWS_WITH(group_norm_silu_conv2d(x, 5, affine, affine, 1e-5, w, Tensor(), {1, 1, 1}),
                    doctest::Contains("must be a multiple of groups (5)"));
}

TEST_CASE("upsample_nearest2x_conv2d equals upsampling then convolving, bit for bit, on every path") {
  // Winograd reads the small planes in place of the upsampled ones; the others upsample first.
  struct Case {
    Shape input, weight;
    Convolution2dOptions options;
  };
  const std::vector<Case> cases = {{{2, 64, 14, 14}, {64, 64, 3, 3}, {1, 1, 1}}, {{3, 16, 7, 7}, {24, 16, 3, 3}, {1, 1, 1}},
                                   {{2, 17, 3, 5}, {19, 17, 3, 3}, {1, 0, 1}},   {{1, 16, 1, 1}, {16, 16, 3, 3}, {1, 1, 1}},
                                   {{2, 8, 4, 4}, {8, 8, 3, 3}, {1, 1, 1}},      {{2, 32, 4, 4}, {16, 32, 3, 3}, {2, 1, 1}}};
  std::uint64_t seed = 4200;
  for (DType dtype : {DType::Float32, DType::Float64})
    for (const Case& c : cases) {
      const Tensor x = random_tensor(c.input, ++seed, dtype), weight = random_tensor(c.weight, ++seed, dtype);
      const Tensor bias = random_tensor({c.weight[0]}, ++seed, dtype);
      INFO(dtype_name(dtype), " input ", shape_string(c.input), " weight ", shape_string(c.weight));
      const Tensor separate = conv2d(upsample_nearest2x(x), weight, bias, c.options);
      CHECK(bitwise_equal(upsample_nearest2x_conv2d(x, weight, bias, c.options), separate));
      CHECK(bitwise_equal(upsample_nearest2x_conv2d(x, weight, Tensor(), c.options),
                          conv2d(upsample_nearest2x(x), weight, Tensor(), c.options)));
    }
  // Recorded as the two ops when a gradient is wanted, one op without: the same values.
  const Tensor x = random_tensor({2, 16, 5, 6}, 1, DType::Float32), w = random_tensor({16, 16, 3, 3}, 2, DType::Float32);
  const Tensor b = random_tensor({16}, 3, DType::Float32);
  const Variable recorded = upsample_nearest2x_conv2d(Variable(x, true), Variable(w, true), Variable(b, true), {1, 1, 1});
  CHECK(recorded.requires_grad());
  const Variable unrecorded = upsample_nearest2x_conv2d(Variable(x), Variable(w), Variable(b), {1, 1, 1});
  CHECK_FALSE(unrecorded.requires_grad());
  CHECK(bitwise_equal(recorded.value(), unrecorded.value()));
  CHECK_THROWS_WITH(upsample_nearest2x_conv2d(random_tensor({2, 16, 5}, 4, DType::Float32), w, b, {1, 1, 1}),
                    doctest::Contains("input must be [N, C, H, W], got [2, 16, 5]"));
}

TEST_CASE("group_norm_silu_conv2d with a per-image bias records the same values it computes without a graph") {
  const Tensor x = random_tensor({3, 16, 9, 7}, 11, DType::Float32), gamma = random_tensor({16}, 12, DType::Float32),
               beta = random_tensor({16}, 13, DType::Float32), weight = random_tensor({20, 16, 3, 3}, 14, DType::Float32),
               bias = random_tensor({20}, 15, DType::Float32), image_bias = random_tensor({3, 20}, 16, DType::Float32);
  Generator unused(1);
  auto forward = [&](bool track) {
    std::vector<Variable> leaves;
    for (const Tensor& t : {x, gamma, beta, weight, bias, image_bias}) leaves.emplace_back(t, track);
    return group_norm_silu_conv2d(leaves[0], {4, 1e-5}, leaves[1], leaves[2], 0.0, &unused, leaves[3], leaves[4],
                                  {1, 1, 1}, leaves[5]);
  };
  const Variable recorded = forward(true);
  CHECK(recorded.requires_grad());
  CHECK(bitwise_equal(recorded.value(), forward(false).value()));
  NoGrad no_grad;
  CHECK(bitwise_equal(recorded.value(), forward(true).value()));
}

TEST_CASE("nearest upsampling repeats pixels and its backward sums blocks") {
  const Tensor x = arange(0, 4).view({1, 1, 2, 2});
  CHECK(upsample_nearest2x(x).to_vector<float>() ==
        std::vector<float>{0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3});
  CHECK(upsample_nearest2x_backward(ones({1, 1, 4, 4})).to_vector<float>() == std::vector<float>{4, 4, 4, 4});
}

TEST_CASE("an empty batch gives empty results (and zero weight gradients), never a crash") {
  const Tensor weight = random_tensor({32, 16, 3, 3}, 1301, DType::Float32);
  for (std::int64_t stride : {1, 2}) {
    const Tensor x = zeros({0, 16, 9, 9});
    const Tensor y = conv2d(x, weight, Tensor(), {stride, 1, 1});
    CHECK(y.shape() == Shape{0, 32, stride == 1 ? 9 : 5, stride == 1 ? 9 : 5});
    CHECK(conv2d_input_gradient(y, weight, x.shape(), {stride, 1, 1}).shape() == x.shape());
    const Tensor dw = conv2d_weight_gradient(y, x, weight.shape(), {stride, 1, 1});
    CHECK(dw.shape() == weight.shape());
    CHECK(sum(abs(dw)).item() == 0.0);
  }
  const Tensor gamma = random_tensor({16}, 1302, DType::Float32), beta = random_tensor({16}, 1303, DType::Float32);
  CHECK(group_norm(zeros({0, 16, 5, 5}), 4, gamma, beta, 1e-5, true).output.numel() == 0);
  const Tensor tokens = zeros({0, 49, 16});
  CHECK(attention(tokens, tokens, tokens, 0.25).numel() == 0);
  CHECK(matmul(zeros({0, 7}), random_tensor({7, 5}, 1304, DType::Float32)).shape() == Shape{0, 5});
}

}  // namespace ddpm::testing

namespace ddpm::testing {

TEST_CASE("Winograd's kept weight transforms are reused for the same weights and never serve changed ones") {
  const Tensor x = random_tensor({2, 16, 9, 9}, 61, DType::Float32);
  Tensor weight = random_tensor({16, 16, 3, 3}, 62, DType::Float32);
  const Tensor bias = random_tensor({16}, 63, DType::Float32);
  const Tensor first = conv2d(x, weight, bias, {1, 1, 1});
  CHECK(bitwise_equal(conv2d(x, weight, bias, {1, 1, 1}), first));  // the kept transform: the same bits
  // A change in place through the data pointer, which no version counter sees: the cache
  // compares the weights themselves.
  weight.data<float>()[5] += 0.5f;
  const Tensor changed = conv2d(x, weight, bias, {1, 1, 1});
  Tensor expected;
  {
    ReferenceKernels reference;
    expected = conv2d(x, weight, bias, {1, 1, 1});
  }
  CHECK(!bitwise_equal(changed, first));
  CHECK(closeness(changed, expected, convolution_tolerance(true) / 10, 1e-4) <= 1.0);
  // A transform kept for one tile is never served to the other: the same weights by the
  // other tile equal its transform made for this call alone (ThisCall, an input gradient's
  // lifetime) and differ from the first tile's in their rounding.
  {
    WinogradTileScope scope(selected_winograd_tile() == 4 ? 2 : 4);
    const Tensor small_tile = conv2d(x, weight, bias, {1, 1, 1});
    CHECK(bitwise_equal(conv2d(x, weight, bias, {1, 1, 1}), small_tile));
    Convolution2dOptions this_call{1, 1, 1};
    this_call.reuse_weight_transform = false;
    CHECK(bitwise_equal(conv2d(x, weight, bias, this_call), small_tile));
    CHECK(!bitwise_equal(small_tile, changed));
    CHECK(closeness(small_tile, expected, convolution_tolerance(true) / 10, 1e-4) <= 1.0);
  }
}

TEST_CASE("the Winograd tile is 2 or 4, and any other is refused by name") {
  CHECK_THROWS_WITH(select_winograd_tile(3), doctest::Contains("the Winograd output tile must be 2 or 4, got 3"));
  CHECK_THROWS_WITH(select_winograd_tile(6), doctest::Contains("must be 2 or 4, got 6"));
  const int before = selected_winograd_tile();
  CHECK((before == 2 || before == 4));
  {
    WinogradTileScope scope(before == 4 ? 2 : 4);
    CHECK(selected_winograd_tile() == (before == 4 ? 2 : 4));
  }
  CHECK(selected_winograd_tile() == before);
}

}  // namespace ddpm::testing
