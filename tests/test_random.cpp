#include "tests/test_support.hpp"
#include <limits>

namespace ddpm::testing {

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors") {
  using Words = std::array<std::uint32_t, 4>;
  CHECK(philox4x32({0, 0, 0, 0}, {0, 0}) == Words{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}) ==
        Words{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}) ==
        Words{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("element i of a draw depends only on (seed, offset + i)") {
  Generator whole(42);
  const auto all = randn({10}, whole).to_vector<float>();
  Generator pieces(42);
  const auto first = randn({4}, pieces).to_vector<float>();
  const auto rest = randn({2, 3}, pieces).to_vector<float>();
  for (int i = 0; i < 4; ++i) CHECK(first[i] == all[i]);
  for (int i = 0; i < 6; ++i) CHECK(rest[i] == all[4 + i]);
  CHECK(whole.offset() == 10);
  // Restoring the state replays the stream.
  Generator restored(0);
  restored.set_state(42, 4);
  CHECK(randn({6}, restored).to_vector<float>() == rest);
  // Another seed gives other numbers.
  Generator other(43);
  CHECK(randn({10}, other).to_vector<float>() != all);
}

TEST_CASE("the vectorised draws equal the scalar single-value functions, element by element") {
  // Draws compute eight Philox blocks at a time; uniform_at / normal_at compute one. Odd
  // offsets and lengths put the eight-block groups out of step with the tensor.
  for (std::uint64_t skip : {0u, 3u, 13u}) {
    Generator generator(0x123456789abcdefULL);
    generator.advance(skip);
    const auto uniform = rand({37}, generator, DType::Float64).to_vector<double>();
    const auto normal = randn({21}, generator, DType::Float64).to_vector<double>();
    for (std::size_t i = 0; i < uniform.size(); ++i) CHECK(uniform[i] == uniform_at(0x123456789abcdefULL, skip, i));
    for (std::size_t i = 0; i < normal.size(); ++i)
      CHECK(normal[i] == normal_at(0x123456789abcdefULL, skip + uniform.size(), i));
  }
  // Counters past 2^32 carry into the second counter word.
  Generator high(5);
  high.set_state(5, (std::uint64_t{1} << 32) - 4);
  const auto values = rand({9}, high, DType::Float64).to_vector<double>();
  for (std::size_t i = 0; i < values.size(); ++i) CHECK(values[i] == uniform_at(5, (std::uint64_t{1} << 32) - 4, i));
}

TEST_CASE("dropout masks: eight 16-bit draws per Philox block in groups of 64 elements, each image's row from a new block, the asked rate, 0 or 1/(1-q)") {
  // Against the scalar block function (checked above on the known-answer vectors).
  const std::uint64_t seed = 0xfeedULL;
  Generator generator(seed);
  generator.advance(5);
  const auto mask = dropout_mask({3, 75}, 0.3, generator, DType::Float64).to_vector<double>();
  CHECK(generator.offset() == 5 + 3 * 10);  // a row of 75: a group of 64 (8 blocks), one of 11 (2 blocks)
  const std::uint32_t threshold = 19661;    // round(0.3 · 65536)
  const double keep = 65536.0 / (65536 - 19661);
  for (std::size_t i = 0; i < mask.size(); ++i) {
    const std::size_t row = i / 75, element = i % 75, group = element / 64, e = element % 64;
    const std::size_t blocks = group == 0 ? 8 : 2, k = e / blocks, block = e % blocks;
    const std::uint64_t counter = 5 + row * 10 + group * 8 + block;
    const auto words = philox4x32({static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32), 0, 0},
                                  {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
    const std::uint32_t half = (words[k / 2] >> (16 * (k % 2))) & 0xFFFFu;
    CHECK(mask[i] == (half < threshold ? 0.0 : keep));
  }
  // Rows of five: one block each, element e from its half e % 2 of word e / 2.
  Generator short_rows(seed);
  const auto small = dropout_mask({4, 5}, 0.3, short_rows, DType::Float64).to_vector<double>();
  CHECK(short_rows.offset() == 4);
  for (std::size_t i = 0; i < small.size(); ++i) {
    const std::uint64_t counter = i / 5;
    const auto words = philox4x32({static_cast<std::uint32_t>(counter), 0, 0, 0},
                                  {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
    const std::uint32_t half = (words[i % 5 / 2] >> (16 * (i % 5 % 2))) & 0xFFFFu;
    CHECK(small[i] == (half < threshold ? 0.0 : keep));
  }
  Generator many(9);
  const Tensor big = dropout_mask({1000003}, 0.1, many, DType::Float64);
  // q = 6554 / 65536: 100006 expected drops, standard deviation 300.
  CHECK(sum(eq(big, 0.0)).item() == doctest::Approx(1000003.0 * 6554 / 65536).epsilon(0.01));
  CHECK(mean(big).item() == doctest::Approx(1.0).epsilon(0.005));
  CHECK(max(big).item() == 65536.0 / (65536 - 6554));
  CHECK_THROWS_WITH_AS(dropout_mask({3}, 1.0, many), doctest::Contains("probability"), TensorError);
  CHECK_THROWS_WITH_AS(dropout_mask({3}, 0.999995, many), doctest::Contains("rounds to 1"), TensorError);
}

TEST_CASE("apply_dropout_ multiplies by the mask in place, bit for bit, and draws the same counters") {
  for (const Shape& shape : std::vector<Shape>{{4, 7, 9}, {2, 1000}, {3, 5}, {2, 4, 64}, {100003}}) {
    CAPTURE(shape_string(shape));
    Generator for_mask(21), in_place(21);
    for_mask.advance(7), in_place.advance(7);
    Generator data(5);
    Tensor x = randn(shape, data);
    x.view({-1}).narrow(0, 1, 1).fill_(std::numeric_limits<double>::quiet_NaN());
    const Tensor expected = mul(x, dropout_mask(shape, 0.25, for_mask));
    Tensor y = x.clone();
    apply_dropout_(y, 0.25, in_place);
    CHECK(bitwise_equal(y, expected));
    CHECK(in_place.offset() == for_mask.offset());
    // Two tensors under one draw: each as apply_dropout_ alone would leave it.
    Generator both(21), alone(21);
    both.advance(7), alone.advance(7);
    Tensor first = x.clone(), second = mul(x, -2.0), second_alone = second.clone();
    apply_dropout_(first, second, 0.25, both);
    apply_dropout_(second_alone, 0.25, alone);
    CHECK(bitwise_equal(first, expected));
    CHECK(bitwise_equal(second, second_alone));
    CHECK(both.offset() == alone.offset());
  }
  Generator generator(1);
  Tensor a = zeros({2, 3}), b = zeros({3, 2});
  CHECK_THROWS_WITH_AS(apply_dropout_(a, b, 0.1, generator), doctest::Contains("cannot share a mask"), TensorError);
}

TEST_CASE("dropout masks in a batch window: each image draws its rows of the whole batch's mask") {
  // Rows of 15 and 100 elements (not whole groups) and of 128 (whole groups, the fast path).
  for (std::int64_t per_image : {15, 100, 128}) {
    CAPTURE(per_image);
    Generator whole_generator(77);
    whole_generator.advance(3);
    const Tensor whole = dropout_mask({6, per_image}, 0.4, whole_generator);
    CHECK(whole_generator.offset() == 3 + 6 * static_cast<std::uint64_t>((per_image + 7) / 8));
    std::vector<Tensor> parts;
    for (std::int64_t first : {0, 2, 3}) {  // images [0, 2), [2, 3), [3, 6)
      const std::int64_t count = first == 0 ? 2 : first == 2 ? 1 : 3;
      Generator part(77);
      part.advance(3);
      part.set_batch_window(first, 6);
      parts.push_back(dropout_mask({count, per_image}, 0.4, part));
      CHECK(part.offset() == whole_generator.offset());  // a second draw starts where the whole batch's would
    }
    CHECK(bitwise_equal(concat(parts, 0), whole));
  }
  Generator outside(1);
  outside.set_batch_window(4, 6);
  CHECK_THROWS_WITH_AS(dropout_mask({3, 5}, 0.1, outside), doctest::Contains("runs past the batch window"), TensorError);
  CHECK_THROWS_WITH_AS(outside.set_batch_window(6, 6), doctest::Contains("not in a batch of 6"), TensorError);
}

TEST_CASE("uniform and normal draws have the right moments") {
  Generator generator(7);
  const Tensor u = rand({200000}, generator, DType::Float64);
  const Tensor n = randn({200000}, generator, DType::Float64);
  // Standard errors: mean of U(0,1) 0.00065, var 0.0002; normal mean 0.0022, var 0.0032.
  CHECK(mean(u).item() == doctest::Approx(0.5).epsilon(0.01));
  CHECK(var(u).item() == doctest::Approx(1.0 / 12).epsilon(0.02));
  CHECK(min(u).item() >= 0.0);
  CHECK(max(u).item() < 1.0);
  CHECK(std::abs(mean(n).item()) < 0.01);
  CHECK(var(n).item() == doctest::Approx(1.0).epsilon(0.02));
  // Fraction beyond 2 sigma: 4.55%.
  CHECK(mean(gt(abs(n), 2.0)).item() == doctest::Approx(0.0455).epsilon(0.05));
}

TEST_CASE("randint covers its range uniformly") {
  Generator generator(3);
  const auto values = randint(2, 6, {40000}, generator).to_vector<std::int64_t>();
  std::array<int, 4> counts{};
  for (std::int64_t v : values) {
    REQUIRE(v >= 2);
    REQUIRE(v < 6);
    ++counts[v - 2];
  }
  for (int c : counts) CHECK(c == doctest::Approx(10000).epsilon(0.04));
}

}  // namespace ddpm::testing
