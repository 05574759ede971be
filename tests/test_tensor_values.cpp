// Op values against independently computed numbers.
#include <algorithm>
#include "tests/test_support.hpp"

namespace ddpm::testing {

TEST_CASE("elementwise values") {
  const Tensor x = Tensor::from_vector<double>({-2, -0.5, 0, 1.5}, {4});
  CHECK(silu(x).at({0}) == doctest::Approx(-2.0 / (1.0 + std::exp(2.0))));
  CHECK(sigmoid(x).at({2}) == doctest::Approx(0.5));
  CHECK(tanh(x).at({3}) == doctest::Approx(std::tanh(1.5)));
  CHECK(pow(abs(x), 2.5).at({0}) == doctest::Approx(std::pow(2.0, 2.5)));
  CHECK(rsqrt(Tensor::from_vector<float>({4.0f}, {1})).item() == 0.5);
  CHECK(sign(x).to_vector<double>() == std::vector<double>{-1, -1, 0, 1});
  CHECK(maximum(x, 0.0).to_vector<double>() == std::vector<double>{0, 0, 0, 1.5});
  CHECK(where(gt(x, 0.0), x, mul(x, 10.0)).to_vector<double>() == std::vector<double>{-20, -5, 0, 1.5});
  CHECK(sub(1.0, x).to_vector<double>() == std::vector<double>{3, 1.5, 1, -0.5});
}

TEST_CASE("broadcasting follows NumPy") {
  const Tensor column = Tensor::from_vector<float>({1, 2}, {2, 1});
  const Tensor row = Tensor::from_vector<float>({10, 20, 30}, {3});
  const Tensor grid = add(column, row);
  CHECK(grid.shape() == Shape{2, 3});
  CHECK(grid.to_vector<float>() == std::vector<float>{11, 21, 31, 12, 22, 32});
}

TEST_CASE("reductions") {
  const Tensor x = arange(1, 7, 1, DType::Float64).view({2, 3});
  CHECK(sum(x).item() == 21);
  CHECK(sum(x, {0}).to_vector<double>() == std::vector<double>{5, 7, 9});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1});
  CHECK(mean(x, {1}).to_vector<double>() == std::vector<double>{2, 5});
  CHECK(max(x, {0}).to_vector<double>() == std::vector<double>{4, 5, 6});
  CHECK(min(x).item() == 1);
  CHECK(var(x).item() == doctest::Approx(3.5));           // unbiased over 1..6
  CHECK(var(x, {}, false, 0).item() == doctest::Approx(35.0 / 12));
  CHECK(sum_to_shape(ones({2, 3, 4}), {3, 1}).to_vector<float>() == std::vector<float>{8, 8, 8});
}

TEST_CASE("matmul, softmax, joins and indexing") {
  const Tensor a = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = Tensor::from_vector<float>({7, 8, 9, 10, 11, 12}, {3, 2});
  CHECK(matmul(a, b).to_vector<float>() == std::vector<float>{58, 64, 139, 154});
  CHECK(matmul(b.transpose(0, 1), a.transpose(0, 1)).to_vector<float>() == std::vector<float>{58, 139, 64, 154});

  const Tensor logits = Tensor::from_vector<double>({1, 2, 3, 1000, 1000, 1000}, {2, 3});
  const Tensor p = softmax(logits, 1);
  const double denominator = std::exp(-2.0) + std::exp(-1.0) + 1.0;
  CHECK(p.at({0, 2}) == doctest::Approx(1.0 / denominator));
  CHECK(p.at({1, 0}) == doctest::Approx(1.0 / 3));  // stable with huge logits
  CHECK(log_softmax(logits, 1).at({0, 0}) == doctest::Approx(-2.0 - std::log(denominator)));

  const Tensor joined = concat({a, b.transpose(0, 1)}, 0);
  CHECK(joined.shape() == Shape{4, 3});
  CHECK(joined.at({3, 2}) == 12);
  auto parts = split(joined, {1, 3}, 0);
  CHECK(parts[1].shape() == Shape{3, 3});
  CHECK(stack({a, a}, 2).shape() == Shape{2, 3, 2});

  const Tensor table = arange(0, 12).view({4, 3});
  const Tensor picked = index_select(table, 0, Tensor::from_vector<std::int64_t>({3, 3, 0}, {3}));
  CHECK(picked.to_vector<float>() == std::vector<float>{9, 10, 11, 9, 10, 11, 0, 1, 2});
  const Tensor gathered = gather(table, 1, Tensor::from_vector<std::int64_t>({2, 0, 1, 1}, {4, 1}));
  CHECK(gathered.to_vector<float>() == std::vector<float>{2, 3, 7, 10});
}

TEST_CASE("factories") {
  CHECK(arange(0, 1, 0.25).to_vector<float>() == std::vector<float>{0, 0.25, 0.5, 0.75});
  CHECK(arange(3, 0, -1, DType::Int64).to_vector<std::int64_t>() == std::vector<std::int64_t>{3, 2, 1});
  CHECK(full({2}, 7.5, DType::Float64).to_vector<double>() == std::vector<double>{7.5, 7.5});
  CHECK(zeros({0, 3}).numel() == 0);
}

}  // namespace ddpm::testing

namespace ddpm::testing {

TEST_CASE("memory statistics follow live tensors; released buffers are reused, then returned") {
  release_cached_memory();
  reset_peak_memory();
  const MemoryStatistics before = memory_statistics();
  CHECK(before.cached_bytes == 0);
  const std::size_t bytes = std::size_t{1} << 22;  // 4 MiB: a cached size
  const void* first_address = nullptr;
  {
    const Tensor a = Tensor::empty({static_cast<std::int64_t>(bytes / 4)});
    first_address = a.raw_data();
    CHECK(memory_statistics().live_bytes == before.live_bytes + bytes);
  }
  CHECK(memory_statistics().live_bytes == before.live_bytes);
  CHECK(memory_statistics().cached_bytes == bytes);
  CHECK(memory_statistics().peak_live_bytes >= before.live_bytes + bytes);
  {
    const Tensor b = Tensor::empty({static_cast<std::int64_t>(bytes / 4)});
    CHECK(b.raw_data() == first_address);  // the same buffer again
    CHECK(memory_statistics().cached_bytes == 0);
  }
  release_cached_memory();
  CHECK(memory_statistics().cached_bytes == 0);
}

TEST_CASE("without room for fresh pages, a size the cache lacks is built from cached pages: split or moved, never zeroed") {
  // Fresh anonymous memory reads as zeros; a buffer made of cached pages still holds what
  // was written into them, which shows they were kept rather than faulted in anew.
  release_cached_memory();  // the bound (the peak of live bytes) is learnt from here: 4 MiB more
  const std::int64_t large = std::int64_t{1} << 20, small = large / 2 + 16, larger = large + large / 4;
  {
    Tensor a = full({large}, 3.0);
    (void)a;
  }
  CHECK(memory_statistics().cached_bytes == static_cast<std::size_t>(large) * 4);
  const float* first_address = nullptr;
  {
    const Tensor split = Tensor::empty({small});  // no room: the larger buffer is split
    first_address = split.data<float>();
    CHECK(memory_statistics().cached_bytes > 0);  // its tail stays cached
    const auto values = split.to_vector<float>();
    CHECK(std::all_of(values.begin(), values.end(), [](float v) { return v == 3.0f; }));
  }
  {
    // Nothing as large: the two cached pieces moved side by side, the rest fresh.
    const Tensor gathered = Tensor::empty({larger});
    CHECK(memory_statistics().cached_bytes == 0);
    CHECK(gathered.data<float>() != first_address);
    const auto values = gathered.to_vector<float>();
    CHECK(std::all_of(values.begin(), values.begin() + large, [](float v) { return v == 3.0f; }));
    CHECK(std::all_of(values.begin() + large, values.end(), [](float v) { return v == 0.0f; }));
  }
  release_cached_memory();
}

}  // namespace ddpm::testing
