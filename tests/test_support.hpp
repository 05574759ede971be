#pragma once
// Helpers shared by the test files: seeded inputs and comparisons.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "autograd/autograd_library.hpp"

namespace ddpm::testing {

inline Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype = DType::Float64) {
  Generator generator(seed);
  return randn(shape, generator, dtype);
}

// Uniform in [low, high).
inline Tensor uniform_tensor(const Shape& shape, std::uint64_t seed, double low, double high,
                             DType dtype = DType::Float64) {
  Generator generator(seed);
  return add(mul(rand(shape, generator, dtype), high - low), low);
}

// Largest |a - b| / (atol + rtol |b|) over all elements: <= 1 means "close".
inline double closeness(const Tensor& a, const Tensor& b, double atol, double rtol) {
  REQUIRE(a.shape() == b.shape());
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    if (std::isinf(x[i]) && x[i] == y[i]) continue;
    worst = std::max(worst, std::abs(x[i] - y[i]) / (atol + rtol * std::abs(y[i])));
  }
  return worst;
}

// Runs the Winograd convolutions with output tile `tile` (2 or 4) until the scope ends.
class WinogradTileScope {
 public:
  explicit WinogradTileScope(int tile) : previous_(selected_winograd_tile()) { select_winograd_tile(tile); }
  ~WinogradTileScope() { select_winograd_tile(previous_); }
  WinogradTileScope(const WinogradTileScope&) = delete;
  WinogradTileScope& operator=(const WinogradTileScope&) = delete;

 private:
  int previous_;
};

// The absolute tolerance of a float32 convolution against its reference, unit-scale inputs:
// 1e-4, or 5e-4 where Winograd's F(4x4, 3x3) computes it (`winograd`: a 3x3, stride-1 shape
// with 16+ channels each way, forward or input gradient), which rounds about 5x more than
// the direct sum (its worst element in the kernel table is 2.3x 1e-4). Under F(2x2) the
// tolerance stays 1e-4.
inline double convolution_tolerance(bool winograd) {
  return winograd && selected_winograd_tile() == 4 ? 5e-4 : 1e-4;
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  return std::memcmp(x.raw_data(), y.raw_data(), static_cast<std::size_t>(x.numel()) * element_size(x.dtype())) == 0;
}

// A non-contiguous tensor with the same values as `t`: stored transposed, viewed back.
inline Tensor as_transposed_storage(const Tensor& t) {
  if (t.rank() < 2) return t;
  return t.transpose(0, -1).contiguous().transpose(0, -1);
}

// A non-contiguous tensor with the same values: every other element of a larger buffer.
inline Tensor as_strided_slice(const Tensor& t) {
  if (t.rank() < 1) return t;
  Shape wide = t.shape();
  wide.back() *= 2;
  Tensor buffer = zeros(wide, t.dtype());
  Tensor view = buffer.slice(-1, 0, wide.back(), 2);
  view.copy_(t);
  return view;
}

}  // namespace ddpm::testing
