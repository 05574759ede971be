// The Winograd transforms run on vectors of one width and hand their results to a
// microkernel whose panels have another (chosen at run time). Every pairing must give the
// reference's values: here each microkernel this CPU has meets vectors narrower than its
// panel, as wide, and two and four times its panel's width (wider than any CPU's: AVX-512
// floats are 16 lanes, SSE2's panel 8), in float32 and float64, so an AVX2 machine checks
// what an AVX-512 machine runs; and by both algorithms, F(4x4, 3x3) and F(2x2, 3x3).
#include "tests/test_support.hpp"

#include <limits>
#include <tuple>

#include <xsimd/xsimd.hpp>

#include "tensor/convolution/winograd_body.hpp"
#include "tests/wide_vector.hpp"

namespace ddpm::testing {
namespace {

struct WinogradCase {
  Shape input;
  std::int64_t outputs, padding;
};

// Channel counts that are not a multiple of a vector or a panel, outputs past a panel
// (33), paddings 0-3, and the weight gradient's several chunks and groups of images.
const std::vector<WinogradCase> winograd_cases = {
    {{2, 16, 24, 23}, 16, 1}, {{5, 32, 14, 14}, 64, 1}, {{1, 16, 6, 5}, 33, 1}, {{2, 17, 7, 7}, 19, 1},
    {{3, 24, 9, 6}, 32, 0},   {{1, 16, 5, 8}, 16, 2},   {{2, 40, 3, 3}, 18, 1}, {{20, 16, 7, 7}, 24, 1},
    {{1, 16, 5, 6}, 16, 3}};

template <class Vector, class Algorithm>
void check_winograd_against_reference(const gemm_detail::Microkernel<typename Vector::value_type>& kernel,
                                      DType dtype, double tolerance) {
  using T = typename Vector::value_type;
  std::uint64_t seed = 7000;
  for (const WinogradCase& c : winograd_cases) {
    const std::int64_t batch = c.input[0], channels = c.input[1], height = c.input[2], width = c.input[3];
    const Tensor x = random_tensor(c.input, ++seed, dtype);
    const Tensor w = random_tensor({c.outputs, channels, 3, 3}, ++seed, dtype);
    const Tensor b = random_tensor({c.outputs}, ++seed, dtype);
    const Convolution2dOptions options{1, c.padding, 1};
    const Tensor expected = conv2d_reference(x, w, b, options);
    // NaN where nothing is written yet: a value the transforms skip stays NaN and fails.
    Tensor y = full(expected.shape(), std::numeric_limits<double>::quiet_NaN(), dtype);
    convolution_detail::winograd::correlate<Vector, Algorithm>(kernel, x.data<T>(), batch, channels, height, width, c.padding, c.outputs,
                                w.data<T>(), b.data<T>(), y.data<T>());
    const Tensor dy = random_tensor(expected.shape(), ++seed, dtype);
    Tensor dw = full(w.shape(), std::numeric_limits<double>::quiet_NaN(), dtype);
    convolution_detail::winograd::weight_gradient<Vector, Algorithm>(kernel, x.data<T>(), batch, channels, height, width, c.padding, c.outputs,
                                      dy.data<T>(), dw.data<T>());
    // With the input activation (GroupNorm+SiLU, 4 or 8 groups) and a bias per image: the
    // activation runs on the compiler's vectors over channel strides of this Vector's width.
    const std::int64_t groups = channels % 8 == 0 ? 8 : channels % 4 == 0 ? 4 : 1;
    const Tensor gamma = random_tensor({channels}, ++seed, dtype), beta = random_tensor({channels}, ++seed, dtype);
    const Tensor image_bias = random_tensor({batch, c.outputs}, ++seed, dtype);
    const Tensor activated_expected =
        add(conv2d_reference(group_norm_reference(x, groups, gamma, beta, 1e-5, true).output, w, b, options),
            image_bias.view({batch, c.outputs, 1, 1}));
    Tensor activated = full(expected.shape(), std::numeric_limits<double>::quiet_NaN(), dtype);
    const convolution_detail::InputFusion<T> activation{gamma.data<T>(), beta.data<T>(), groups, 1e-5};
    convolution_detail::winograd::correlate<Vector, Algorithm>(kernel, x.data<T>(), batch, channels, height, width, c.padding,
                                                    c.outputs, w.data<T>(), b.data<T>(), activated.data<T>(), activation,
                                                    image_bias.data<T>());
    // With nearest upsampling on the way in: the input holds planes of half the height and width.
    const Tensor small = random_tensor({batch, channels, (height + 1) / 2, (width + 1) / 2}, ++seed, dtype);
    const Tensor upsampled_expected = conv2d_reference(upsample_nearest2x(small), w, b, options);
    Tensor upsampled = full(upsampled_expected.shape(), std::numeric_limits<double>::quiet_NaN(), dtype);
    convolution_detail::InputFusion<T> upsampling;
    upsampling.upsample = true;
    convolution_detail::winograd::correlate<Vector, Algorithm>(kernel, small.data<T>(), batch, channels, 2 * small.size(2),
                                                    2 * small.size(3), c.padding, c.outputs, w.data<T>(), b.data<T>(),
                                                    upsampled.data<T>(), upsampling);
    INFO(std::string(Algorithm::name), " kernel ", kernel.name, " (panel ", kernel.nr, ") vector of ", Vector::size, " ",
         dtype_name(dtype),
         " input ", shape_string(c.input), " outputs ", c.outputs, " padding ", c.padding);
    CHECK(closeness(y, expected, tolerance, tolerance) <= 1.0);
    CHECK(closeness(activated, activated_expected, tolerance, tolerance) <= 1.0);
    CHECK(closeness(upsampled, upsampled_expected, tolerance, tolerance) <= 1.0);
    CHECK(closeness(dw, conv2d_weight_gradient_reference(dy, x, w.shape(), options), 10 * tolerance, tolerance) <=
          1.0);
  }
}

// F(4x4, 3x3)'s transforms multiply by up to 8 and divide by 24: its float32 results are
// checked at 5x F(2x2)'s tolerance (the worst case here is 2.2x F(2x2)'s tolerance).
template <class T>
void check_every_pairing(DType dtype, double tolerance) {
  using Native = xsimd::batch<T>;
  using Vectors = std::tuple<xsimd::batch<T, xsimd::sse2>, Native, WideVector<Native, 2>, WideVector<Native, 4>>;
  for (const auto& kernel : gemm_detail::available_microkernels<T>())
    std::apply(
        [&](auto... vectors) {
          (check_winograd_against_reference<decltype(vectors), convolution_detail::winograd::F4x4>(kernel, dtype,
                                                                                                  5 * tolerance),
           ...);
          (check_winograd_against_reference<decltype(vectors), convolution_detail::winograd::F2x2>(kernel, dtype,
                                                                                                  tolerance),
           ...);
        },
        Vectors{});
}

}  // namespace

TEST_CASE("Winograd layouts fit every pairing of vector and panel widths, float32 and float64") {
  check_every_pairing<float>(DType::Float32, 1e-4);
  check_every_pairing<double>(DType::Float64, 1e-11);
}

TEST_CASE("a Winograd convolution refuses to both upsample and normalise its input") {
  const Tensor x = random_tensor({1, 16, 3, 3}, 1, DType::Float32), w = random_tensor({16, 16, 3, 3}, 2, DType::Float32);
  const Tensor affine = random_tensor({16}, 3, DType::Float32);
  Tensor y = zeros({1, 16, 6, 6}, DType::Float32);
  convolution_detail::InputFusion<float> both{affine.data<float>(), affine.data<float>(), 4, 1e-5};
  both.upsample = true;
  CHECK_THROWS_WITH((convolution_detail::winograd::correlate<xsimd::batch<float>, convolution_detail::winograd::F4x4>(
                        gemm_detail::active_microkernel<float>(), x.data<float>(), 1, 16, 6, 6, 1, 16, w.data<float>(),
                        nullptr, y.data<float>(), both)),
                    doctest::Contains("cannot both upsample and normalise its input"));
}

}  // namespace ddpm::testing
