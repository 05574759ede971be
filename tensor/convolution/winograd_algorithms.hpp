#pragma once
// Winograd's minimal filtering algorithms F(m x m, 3 x 3) (Lavin and Gray, "Fast Algorithms
// for Convolutional Neural Networks", 2016). An α x α input tile d (α = m + 2) and a 3 x 3
// kernel g give the tile's m x m outputs as
//     Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A,
// α² products where the direct sum takes 9 m². Each algorithm is its three one-dimensional
// transforms, Bᵀ, Aᵀ and G; the two-dimensional ones apply them down the columns, then
// along the rows (transform_both_ways, below). They are written out, not as matrix products: most
// coefficients are 0, ±1 or powers of two, and a product by a constant 0 is not free in
// floating point (x·0 must stay NaN for x = ∞).
//
// The transforms are exact up to rounding, and the rounding grows with the tile: F(2x2)
// only adds and halves and stays at the direct sum's level (relative rms error 2-3.5e-7 of
// float32 results at the U-Net's depths); F(4x4) multiplies by up to 8 and divides by 24,
// about 1.7e-6 (tests/test_kernels_against_reference.cpp bounds both).

namespace ddpm::convolution_detail::winograd {

// F(2x2, 3x3), interpolation points 0, ±1, ∞: 16 products per 2 x 2 outputs (4 per output).
struct F2x2 {
  static constexpr int output_tile = 2, input_tile = 4;
  static constexpr const char* name = "F(2x2, 3x3)";

  // r = Bᵀ d, Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
  template <class V>
  static void input(const V (&d)[4], V (&r)[4]) {
    r[0] = d[0] - d[2], r[1] = d[1] + d[2], r[2] = d[2] - d[1], r[3] = d[1] - d[3];
  }
  // y = Aᵀ m, Aᵀ = [1 1 1 0; 0 1 −1 −1].
  template <class V>
  static void output(const V (&m)[4], V (&y)[2]) {
    y[0] = m[0] + m[1] + m[2], y[1] = m[1] - m[2] - m[3];
  }
  // u = G g, G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
  template <class S>
  static void kernel(const S (&g)[3], S (&u)[4]) {
    u[0] = g[0], u[1] = (g[0] + g[1] + g[2]) / 2, u[2] = (g[0] - g[1] + g[2]) / 2, u[3] = g[2];
  }
  // The adjoints, for the weight gradient. r = A e, A = [1 0; 1 1; 1 −1; 0 −1]: a tile of
  // the output gradient carried back through the output transform.
  template <class V>
  static void output_adjoint(const V (&e)[2], V (&r)[4]) {
    r[0] = e[0], r[1] = e[0] + e[1], r[2] = e[0] - e[1], r[3] = -e[1];
  }
  // g = Gᵀ u.
  template <class S>
  static void kernel_adjoint(const S (&u)[4], S (&g)[3]) {
    g[0] = u[0] + (u[1] + u[2]) / 2, g[1] = (u[1] - u[2]) / 2, g[2] = (u[1] + u[2]) / 2 + u[3];
  }
};

// F(4x4, 3x3), interpolation points 0, ±1, ±2, ∞: 36 products per 4 x 4 outputs (2.25 per
// output, 1.78x fewer than F(2x2)). The pairs of rows at ±1 and ±2 share their sums.
struct F4x4 {
  static constexpr int output_tile = 4, input_tile = 6;
  static constexpr const char* name = "F(4x4, 3x3)";

  // r = Bᵀ d, Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0;
  //                 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
  template <class V>
  static void input(const V (&d)[6], V (&r)[6]) {
    using T = typename V::value_type;
    const V two(T(2)), four(T(4)), five(T(5));
    const V even_one = fnma(four, d[2], d[4]), odd_one = fnma(four, d[1], d[3]);  // d4 − 4 d2, d3 − 4 d1
    const V even_two = d[4] - d[2], odd_two = d[3] - d[1];
    r[0] = fnma(five, d[2], fma(four, d[0], d[4]));
    r[1] = even_one + odd_one, r[2] = even_one - odd_one;
    r[3] = fma(two, odd_two, even_two), r[4] = fnma(two, odd_two, even_two);
    r[5] = fnma(five, d[3], fma(four, d[1], d[5]));
  }
  // y = Aᵀ m, Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
  template <class V>
  static void output(const V (&m)[6], V (&y)[4]) {
    using T = typename V::value_type;
    const V sum_one = m[1] + m[2], difference_one = m[1] - m[2];
    const V sum_two = m[3] + m[4], difference_two = m[3] - m[4];
    y[0] = m[0] + sum_one + sum_two;
    y[1] = fma(V(T(2)), difference_two, difference_one);
    y[2] = fma(V(T(4)), sum_two, sum_one);
    y[3] = fma(V(T(8)), difference_two, difference_one) + m[5];
  }
  // u = G g, G = [¼ 0 0; −⅙ −⅙ −⅙; −⅙ ⅙ −⅙; 1/24 1/12 ⅙; 1/24 −1/12 ⅙; 0 0 1], in
  // double (winograd_body.hpp). A training step transforms its changed weights at every
  // call, so the divisions are products with the reciprocals (their rounding, in double,
  // far below float's).
  template <class S>
  static void kernel(const S (&g)[3], S (&u)[6]) {
    constexpr S sixth = S(1) / 6, twenty_fourth = S(1) / 24;
    u[0] = g[0] / 4;
    u[1] = -(g[0] + g[1] + g[2]) * sixth, u[2] = -(g[0] - g[1] + g[2]) * sixth;
    u[3] = (g[0] + 2 * g[1] + 4 * g[2]) * twenty_fourth, u[4] = (g[0] - 2 * g[1] + 4 * g[2]) * twenty_fourth;
    u[5] = g[2];
  }
  // The adjoints, for the weight gradient. r = A e, A = (Aᵀ)ᵀ: rows [1 0 0 0], [1 1 1 1],
  // [1 −1 1 −1], [1 2 4 8], [1 −2 4 −8], [0 0 0 1].
  template <class V>
  static void output_adjoint(const V (&e)[4], V (&r)[6]) {
    using T = typename V::value_type;
    const V even_one = e[0] + e[2], odd_one = e[1] + e[3];
    const V even_two = fma(V(T(4)), e[2], e[0]), odd_two = fma(V(T(8)), e[3], e[1] + e[1]);  // e0 + 4 e2, 2 e1 + 8 e3
    r[0] = e[0];
    r[1] = even_one + odd_one, r[2] = even_one - odd_one;
    r[3] = even_two + odd_two, r[4] = even_two - odd_two;
    r[5] = e[3];
  }
  // g = Gᵀ u, in double (once per weight, after the sums over the batch).
  template <class S>
  static void kernel_adjoint(const S (&u)[6], S (&g)[3]) {
    constexpr S sixth = S(1) / 6, twelfth = S(1) / 12, twenty_fourth = S(1) / 24;
    const S sum_one = u[1] + u[2], sum_two = u[3] + u[4];
    g[0] = u[0] / 4 - sum_one * sixth + sum_two * twenty_fourth;
    g[1] = (u[2] - u[1]) * sixth + (u[3] - u[4]) * twelfth;
    g[2] = (sum_two - sum_one) * sixth + u[5];
  }
};

// Y = T X Tᵀ for a one-dimensional transform T from In values to Out values (one of the
// above, as a callable): T down each column of the In x In tile X, then along each row of
// the result. Every two-dimensional transform of the algorithms is this with one of theirs.
// X is read through x(i, j) a column at a time, as the first pass needs it, so a tile in
// memory is loaded column by column rather than held whole in registers.
template <int In, int Out, class Value, class Element, class Transform>
void transform_both_ways(Element x, Value (&y)[Out][Out], Transform transform) {
  Value columns_done[Out][In];  // T X
  for (int j = 0; j < In; ++j) {
    Value column[In], result[Out];
    for (int i = 0; i < In; ++i) column[i] = x(i, j);
    transform(column, result);
    for (int i = 0; i < Out; ++i) columns_done[i][j] = result[i];
  }
  for (int i = 0; i < Out; ++i) transform(columns_done[i], y[i]);
}

}  // namespace ddpm::convolution_detail::winograd
