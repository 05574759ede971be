#pragma once
// Differentiable ops on Variables. Each is defined in one place with its gradient
// (autograd/*_functions.cpp) and keeps only what its backward needs.
#include <vector>

#include "autograd/variable.hpp"
#include "tensor/convolution.hpp"
#include "tensor/random.hpp"
#include "tensor/reduction.hpp"

namespace ddpm {

// ---- elementwise (elementwise_functions.cpp) ----
Variable neg(const Variable& x);
Variable abs(const Variable& x);
Variable exp(const Variable& x);
Variable log(const Variable& x);
Variable sqrt(const Variable& x);
Variable rsqrt(const Variable& x);
Variable square(const Variable& x);
Variable tanh(const Variable& x);
Variable sigmoid(const Variable& x);
Variable silu(const Variable& x);
Variable pow(const Variable& x, double exponent);

Variable add(const Variable& a, const Variable& b);
Variable sub(const Variable& a, const Variable& b);
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);
Variable maximum(const Variable& a, const Variable& b);  // ties share the gradient equally
Variable minimum(const Variable& a, const Variable& b);
Variable maximum(const Variable& a, double b);  // clamps; the gradient stops where b wins
Variable minimum(const Variable& a, double b);
Variable add(const Variable& a, double b);
Variable mul(const Variable& a, double b);
Variable sub(double a, const Variable& b);
// condition is not differentiated.
Variable where(const Tensor& condition, const Variable& a, const Variable& b);

inline Variable operator+(const Variable& a, const Variable& b) { return add(a, b); }
inline Variable operator-(const Variable& a, const Variable& b) { return sub(a, b); }
inline Variable operator*(const Variable& a, const Variable& b) { return mul(a, b); }
inline Variable operator/(const Variable& a, const Variable& b) { return div(a, b); }
inline Variable operator-(const Variable& a) { return neg(a); }
inline Variable operator+(const Variable& a, double b) { return add(a, b); }
inline Variable operator-(const Variable& a, double b) { return add(a, -b); }
inline Variable operator*(const Variable& a, double b) { return mul(a, b); }
inline Variable operator*(double a, const Variable& b) { return mul(b, a); }
inline Variable operator/(const Variable& a, double b) { return mul(a, 1.0 / b); }

// ---- reductions (reduction_functions.cpp) ----
Variable sum(const Variable& x, const Axes& axes = {}, bool keepdim = false);
Variable mean(const Variable& x, const Axes& axes = {}, bool keepdim = false);
Variable max(const Variable& x, const Axes& axes = {}, bool keepdim = false);
Variable min(const Variable& x, const Axes& axes = {}, bool keepdim = false);
Variable var(const Variable& x, const Axes& axes = {}, bool keepdim = false, double correction = 1.0);

// ---- matrix products and softmax (matmul_functions.cpp, softmax_functions.cpp) ----
Variable matmul(const Variable& a, const Variable& b);
Variable softmax(const Variable& x, std::int64_t axis = -1);
Variable log_softmax(const Variable& x, std::int64_t axis = -1);

// ---- convolution and normalisation (convolution_functions.cpp, ...) ----
// input [N, Ci, H, W], weight [Co, Ci, KH, KW], bias [Co] or an undefined Variable.
Variable conv2d(const Variable& input, const Variable& weight, const Variable& bias, const Convolution2dOptions& options);
// GroupNorm of [N, C, H, W] with per-channel gamma and beta [C], optionally followed by SiLU.
Variable group_norm(const Variable& input, std::int64_t groups, const Variable& gamma, const Variable& beta,
                    double eps = 1e-5, bool apply_silu = false);
// ---- ops that recompute instead of saving (fused_functions.cpp) ----
// Inverted dropout: zeroes each element with `probability` and scales the rest by
// 1/(1 - probability). The mask is redrawn from the generator's counters in backward, so
// nothing is saved. Advances the generator by x.numel() counters.
Variable dropout(const Variable& x, double probability, Generator& generator);
struct NormalizationOptions {
  std::int64_t groups = 32;
  double eps = 1e-5;
};
// conv2d(dropout(SiLU(GroupNorm(input)))) + image_bias, bit for bit the ops in a row, but
// saving only the input and the group statistics: the activation and the dropout mask are
// recomputed in backward. Without a graph to record (no gradient wanted, no dropout) it
// runs as one inference op that never stores the activation (tensor/convolution.hpp).
// input [N, Ci, H, W], gamma/beta [Ci], weight [Co, Ci, KH, KW], bias [Co] or undefined,
// image_bias [N, Co] (a bias per image: a block's time embedding) or undefined;
// dropout_generator may be null when dropout_probability is 0.
Variable group_norm_silu_conv2d(const Variable& input, const NormalizationOptions& norm, const Variable& gamma,
                                const Variable& beta, double dropout_probability, Generator* dropout_generator,
                                const Variable& weight, const Variable& bias, const Convolution2dOptions& options,
                                const Variable& image_bias = Variable());
// softmax(Q Kᵀ · scale) V over [B, L, C] tensors.
Variable attention(const Variable& query, const Variable& key, const Variable& value, double scale);
Variable upsample_nearest2x(const Variable& input);  // [N, C, H, W] -> [N, C, 2H, 2W]
// conv2d(upsample_nearest2x(input), weight, bias, options): recorded as those two ops when
// a gradient is wanted; otherwise one inference op that never stores the upsampled input.
Variable upsample_nearest2x_conv2d(const Variable& input, const Variable& weight, const Variable& bias,
                                   const Convolution2dOptions& options);

// ---- views, joins and indexing (shape_functions.cpp) ----
Variable reshape(const Variable& x, const Shape& shape);
Variable permute(const Variable& x, const std::vector<std::int64_t>& order);
Variable transpose(const Variable& x, std::int64_t axis_a, std::int64_t axis_b);
Variable narrow(const Variable& x, std::int64_t axis, std::int64_t start, std::int64_t length);
Variable slice(const Variable& x, std::int64_t axis, std::int64_t start, std::int64_t end, std::int64_t step = 1);
Variable expand(const Variable& x, const Shape& shape);
Variable squeeze(const Variable& x, std::int64_t axis);
Variable unsqueeze(const Variable& x, std::int64_t axis);
Variable contiguous(const Variable& x);
Variable to_dtype(const Variable& x, DType dtype);
Variable concat(const std::vector<Variable>& xs, std::int64_t axis);
std::vector<Variable> split(const Variable& x, const std::vector<std::int64_t>& sizes, std::int64_t axis);
Variable stack(const std::vector<Variable>& xs, std::int64_t axis);
Variable index_select(const Variable& x, std::int64_t axis, const Tensor& index);
Variable gather(const Variable& x, std::int64_t axis, const Tensor& index);

}  // namespace ddpm
