#pragma once
// Elementwise ops. Binary ops broadcast NumPy-style and take a tensor or a scalar on
// either side; both operands must have the same floating dtype. Comparisons return 0/1
// in the operands' dtype (there is no bool dtype).
#include "tensor/tensor.hpp"

namespace ddpm {

enum class UnaryOp { Negate, Abs, Exp, Log, Sqrt, Rsqrt, Square, Tanh, Sigmoid, Silu, Power, Sign };
enum class BinaryOp {
  Add, Subtract, Multiply, Divide, Maximum, Minimum,
  Equal, NotEqual, Less, LessEqual, Greater, GreaterEqual
};

// `exponent` is used by UnaryOp::Power only.
Tensor unary(UnaryOp op, const Tensor& input, double exponent = 0.0);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
const char* op_name(UnaryOp op);
const char* op_name(BinaryOp op);

inline Tensor neg(const Tensor& x) { return unary(UnaryOp::Negate, x); }
inline Tensor abs(const Tensor& x) { return unary(UnaryOp::Abs, x); }
inline Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
inline Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
inline Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
inline Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::Rsqrt, x); }
inline Tensor square(const Tensor& x) { return unary(UnaryOp::Square, x); }
inline Tensor tanh(const Tensor& x) { return unary(UnaryOp::Tanh, x); }
inline Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::Sigmoid, x); }
inline Tensor silu(const Tensor& x) { return unary(UnaryOp::Silu, x); }
inline Tensor sign(const Tensor& x) { return unary(UnaryOp::Sign, x); }
inline Tensor pow(const Tensor& x, double exponent) { return unary(UnaryOp::Power, x, exponent); }

// A 0-d tensor of `like`'s dtype holding `value`, for scalar operands.
Tensor scalar_like(const Tensor& like, double value);

#define DDPM_BINARY_FUNCTION(name, op)                                                              \
  inline Tensor name(const Tensor& a, const Tensor& b) { return binary(BinaryOp::op, a, b); }       \
  inline Tensor name(const Tensor& a, double b) { return binary(BinaryOp::op, a, scalar_like(a, b)); } \
  inline Tensor name(double a, const Tensor& b) { return binary(BinaryOp::op, scalar_like(b, a), b); }
DDPM_BINARY_FUNCTION(add, Add)
DDPM_BINARY_FUNCTION(sub, Subtract)
DDPM_BINARY_FUNCTION(mul, Multiply)
DDPM_BINARY_FUNCTION(div, Divide)
DDPM_BINARY_FUNCTION(maximum, Maximum)
DDPM_BINARY_FUNCTION(minimum, Minimum)
DDPM_BINARY_FUNCTION(eq, Equal)
DDPM_BINARY_FUNCTION(ne, NotEqual)
DDPM_BINARY_FUNCTION(lt, Less)
DDPM_BINARY_FUNCTION(le, LessEqual)
DDPM_BINARY_FUNCTION(gt, Greater)
DDPM_BINARY_FUNCTION(ge, GreaterEqual)
#undef DDPM_BINARY_FUNCTION

// condition != 0 ? a : b, all three broadcast together; a and b share a dtype.
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// In-place forms used by optimizers and accumulation (this += other, broadcast to this).
Tensor& add_(Tensor& target, const Tensor& other, double alpha = 1.0);
Tensor& mul_(Tensor& target, double factor);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(a, b); }

}  // namespace ddpm
