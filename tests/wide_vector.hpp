#pragma once
// A vector of Count xsimd batches that acts as one batch Count times as wide: the
// operations the Winograd transforms use, lane for lane. With it an AVX2 machine runs the
// transforms at AVX-512's width (16 floats) or wider, against the narrower panels of its
// own microkernels: the pairing that broke on AVX-512 hardware.
#include <cstddef>

#include <xsimd/xsimd.hpp>

namespace ddpm::testing {

template <class Batch, std::size_t Count>
struct WideVector {
  using value_type = typename Batch::value_type;
  static constexpr std::size_t size = Batch::size * Count;
  Batch parts[Count];

  WideVector() = default;
  explicit WideVector(value_type broadcast) {
    for (std::size_t i = 0; i < Count; ++i) parts[i] = Batch(broadcast);
  }

  static WideVector load_unaligned(const value_type* source) {
    WideVector v;
    for (std::size_t i = 0; i < Count; ++i) v.parts[i] = Batch::load_unaligned(source + i * Batch::size);
    return v;
  }
  void store_unaligned(value_type* destination) const {
    for (std::size_t i = 0; i < Count; ++i) parts[i].store_unaligned(destination + i * Batch::size);
  }
  void store_aligned(value_type* destination) const {
    for (std::size_t i = 0; i < Count; ++i) parts[i].store_aligned(destination + i * Batch::size);
  }
  friend WideVector operator+(const WideVector& a, const WideVector& b) {
    WideVector v;
    for (std::size_t i = 0; i < Count; ++i) v.parts[i] = a.parts[i] + b.parts[i];
    return v;
  }
  friend WideVector operator-(const WideVector& a, const WideVector& b) {
    WideVector v;
    for (std::size_t i = 0; i < Count; ++i) v.parts[i] = a.parts[i] - b.parts[i];
    return v;
  }
  friend WideVector operator-(const WideVector& a) {
    WideVector v;
    for (std::size_t i = 0; i < Count; ++i) v.parts[i] = -a.parts[i];
    return v;
  }
  // a·b + c and −a·b + c, with the rounding of the batch's own fma and fnma.
  friend WideVector fma(const WideVector& a, const WideVector& b, const WideVector& c) {
    WideVector v;
    for (std::size_t i = 0; i < Count; ++i) v.parts[i] = xsimd::fma(a.parts[i], b.parts[i], c.parts[i]);
    return v;
  }
  friend WideVector fnma(const WideVector& a, const WideVector& b, const WideVector& c) {
    WideVector v;
    for (std::size_t i = 0; i < Count; ++i) v.parts[i] = xsimd::fnma(a.parts[i], b.parts[i], c.parts[i]);
    return v;
  }
};

}  // namespace ddpm::testing
