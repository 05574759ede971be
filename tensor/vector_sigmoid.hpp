#pragma once
// The logistic sigmoid 1 / (1 + e^-z) on a vector, with the exponential written out for
// float: GroupNorm+SiLU spends most of its time here, and xsimd's exp is built for the
// whole float range (compare-and-select on both ends) with a Horner polynomial, a long
// dependent chain. This one clamps its argument first (beyond the clamp the sigmoid is
// within 2e-38 of 0 or 1), evaluates the polynomial in Estrin's order and scales by 2^n with an
// integer add. Error of the exponential: under 1.5e-7 relative (tested against std::exp).
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace ddpm {

// e^y for float vectors, y clamped to [-87, 88] (outside it e^y over- or underflows).
template <class Arch>
xsimd::batch<float, Arch> exp_of_clamped(xsimd::batch<float, Arch> y) {
  using Batch = xsimd::batch<float, Arch>;
  y = xsimd::min(xsimd::max(y, Batch(-87.0f)), Batch(88.0f));
  // y = n ln2 + r, |r| <= ln2 / 2, with ln2 split in two so n ln2 is exact for |n| < 2^9.
  const Batch n = xsimd::nearbyint(y * Batch(1.44269504088896341f));
  Batch r = xsimd::fnma(n, Batch(0.693359375f), y);
  r = xsimd::fnma(n, Batch(-2.12194440e-4f), r);
  // e^r = 1 + r + r² P(r), P of degree 4 fitted for relative error on |r| <= ln2 / 2
  // (3e-9 before float rounding).
  const Batch r2 = r * r, r4 = r2 * r2;
  const Batch low = xsimd::fma(r, Batch(0.1666652113f), Batch(0.4999999404f));
  const Batch high = xsimd::fma(r, Batch(0.008368711919f), Batch(0.04166838899f));
  const Batch polynomial = xsimd::fma(r4, Batch(0.001381459646f), xsimd::fma(r2, high, low));
  const Batch exp_r = xsimd::fma(r2, polynomial, r) + Batch(1.0f);
  using Integers = xsimd::batch<std::int32_t, Arch>;
  return xsimd::bitwise_cast<Batch>(xsimd::bitwise_cast<Integers>(exp_r) + (xsimd::to_int(n) << 23));
}

// sigmoid(z) given minus_z = -z (callers fold the sign into their affine coefficients).
template <class T, class Arch>
xsimd::batch<T, Arch> sigmoid_of_negated(xsimd::batch<T, Arch> minus_z) {
  using Batch = xsimd::batch<T, Arch>;
  if constexpr (std::is_same_v<T, float>) return Batch(1.0f) / (Batch(1.0f) + exp_of_clamped(minus_z));
  else return Batch(T(1)) / (Batch(T(1)) + xsimd::exp(minus_z));
}

// SiLU(x·scale + shift) with the coefficients given negated: GroupNorm+SiLU's last step,
// shared by GroupNorm's forward and the convolutions that apply it to their input, so both
// round alike (z = −(−z) is exact).
template <class T, class Arch>
xsimd::batch<T, Arch> silu_of_affine(xsimd::batch<T, Arch> x, xsimd::batch<T, Arch> minus_scale,
                                     xsimd::batch<T, Arch> minus_shift) {
  const xsimd::batch<T, Arch> minus_z = xsimd::fma(x, minus_scale, minus_shift);
  return -minus_z * sigmoid_of_negated(minus_z);
}

}  // namespace ddpm
