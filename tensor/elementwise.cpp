#include "tensor/elementwise.hpp"

#include <algorithm>
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "tensor/kernel_path.hpp"
#include "tensor/parallel.hpp"
#include "tensor/strided_loop.hpp"
#include "tensor/vector_sigmoid.hpp"

namespace ddpm {
namespace {

constexpr std::int64_t elementwise_grain = 1 << 15;  // a multiple of every vector width

// Each op is written once, as a function template that works on a scalar T (the reference
// path) and on an xsimd batch (the fast path).
struct NegateFunction { template <class V> V operator()(V x) const { return -x; } };
struct AbsFunction { template <class V> V operator()(V x) const { using std::abs; using xsimd::abs; return abs(x); } };
struct ExpFunction { template <class V> V operator()(V x) const { using std::exp; using xsimd::exp; return exp(x); } };
struct LogFunction { template <class V> V operator()(V x) const { using std::log; using xsimd::log; return log(x); } };
struct SqrtFunction { template <class V> V operator()(V x) const { using std::sqrt; using xsimd::sqrt; return sqrt(x); } };
struct RsqrtFunction {
  // Exact 1/sqrt: xsimd's rsqrt is a 12-bit approximation.
  template <class V> V operator()(V x) const { using std::sqrt; using xsimd::sqrt; return V(1) / sqrt(x); }
};
struct SquareFunction { template <class V> V operator()(V x) const { return x * x; } };
struct TanhFunction { template <class V> V operator()(V x) const { using std::tanh; using xsimd::tanh; return tanh(x); } };
// Vectors take the shorter-chained exponential of vector_sigmoid.hpp (float) or xsimd's.
struct SigmoidFunction {
  template <class T> T operator()(T x) const { return T(1) / (T(1) + std::exp(-x)); }
  template <class T, class A> xsimd::batch<T, A> operator()(xsimd::batch<T, A> x) const { return sigmoid_of_negated(-x); }
};
struct SiluFunction {
  template <class T> T operator()(T x) const { return x / (T(1) + std::exp(-x)); }
  template <class T, class A> xsimd::batch<T, A> operator()(xsimd::batch<T, A> x) const {
    return x * sigmoid_of_negated(-x);
  }
};
struct SignFunction {
  template <class T> T operator()(T x) const { return static_cast<T>((x > 0) - (x < 0)); }
  template <class T, class A> xsimd::batch<T, A> operator()(xsimd::batch<T, A> x) const {
    using B = xsimd::batch<T, A>;
    return xsimd::select(x > B(0), B(1), xsimd::select(x < B(0), B(-1), B(0)));
  }
};
struct PowerFunction {
  double exponent;
  template <class T> T operator()(T x) const { return static_cast<T>(std::pow(x, static_cast<T>(exponent))); }
  template <class T, class A> xsimd::batch<T, A> operator()(xsimd::batch<T, A> x) const {
    return xsimd::pow(x, xsimd::batch<T, A>(static_cast<T>(exponent)));
  }
};

template <class T, class Function>
void unary_contiguous(const T* input, T* output, std::int64_t count, const Function& function) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  std::int64_t i = 0;
  for (; i + width <= count; i += width) function(Batch::load_unaligned(input + i)).store_unaligned(output + i);
  if (i < count) {
    // The tail goes through the same vector code as the body, padded, so an element's
    // result never depends on where a chunk boundary fell.
    alignas(64) T buffer[width] = {};
    std::copy(input + i, input + count, buffer);
    function(Batch::load_aligned(buffer)).store_aligned(buffer);
    std::copy(buffer, buffer + (count - i), output + i);
  }
}

template <class T, class Function>
void unary_kernel(const Tensor& input, Tensor& output, const Function& function) {
  const T* in = static_cast<const T*>(input.storage()->data()) + input.offset();
  T* out = output.data<T>();
  if (input.is_contiguous() && !use_reference_kernels()) {
    parallel_for(output.numel(), elementwise_grain, [&](std::int64_t begin, std::int64_t end) {
      unary_contiguous(in + begin, out + begin, end - begin, function);
    });
    return;
  }
  // Reference: scalar function, any strides.
  const Strides& output_strides = output.strides();
  parallel_for(output.numel(), elementwise_grain, [&](std::int64_t begin, std::int64_t end) {
    strided_for_each<2>(output.shape(), {&output_strides, &input.strides()}, begin, end,
                        [&](const std::array<std::int64_t, 2>& at) { out[at[0]] = function(in[at[1]]); });
  });
}

template <class Body>
void visit_unary(UnaryOp op, double exponent, Body&& body) {
  switch (op) {
    case UnaryOp::Negate: return body(NegateFunction{});
    case UnaryOp::Abs: return body(AbsFunction{});
    case UnaryOp::Exp: return body(ExpFunction{});
    case UnaryOp::Log: return body(LogFunction{});
    case UnaryOp::Sqrt: return body(SqrtFunction{});
    case UnaryOp::Rsqrt: return body(RsqrtFunction{});
    case UnaryOp::Square: return body(SquareFunction{});
    case UnaryOp::Tanh: return body(TanhFunction{});
    case UnaryOp::Sigmoid: return body(SigmoidFunction{});
    case UnaryOp::Silu: return body(SiluFunction{});
    case UnaryOp::Power: return body(PowerFunction{exponent});
    case UnaryOp::Sign: return body(SignFunction{});
  }
}

// ---- binary ----
struct AddFunction { template <class V> V operator()(V a, V b) const { return a + b; } };
struct SubtractFunction { template <class V> V operator()(V a, V b) const { return a - b; } };
struct MultiplyFunction { template <class V> V operator()(V a, V b) const { return a * b; } };
struct DivideFunction { template <class V> V operator()(V a, V b) const { return a / b; } };
struct MaximumFunction {
  template <class V> V operator()(V a, V b) const { using std::max; using xsimd::max; return max(a, b); }
};
struct MinimumFunction {
  template <class V> V operator()(V a, V b) const { using std::min; using xsimd::min; return min(a, b); }
};
template <class Compare>
struct CompareFunction {
  template <class T> T operator()(T a, T b) const { return Compare{}(a, b) ? T(1) : T(0); }
  template <class T, class A> xsimd::batch<T, A> operator()(xsimd::batch<T, A> a, xsimd::batch<T, A> b) const {
    using B = xsimd::batch<T, A>;
    return xsimd::select(Compare{}(a, b), B(1), B(0));
  }
};

template <class Body>
void visit_binary(BinaryOp op, Body&& body) {
  switch (op) {
    case BinaryOp::Add: return body(AddFunction{});
    case BinaryOp::Subtract: return body(SubtractFunction{});
    case BinaryOp::Multiply: return body(MultiplyFunction{});
    case BinaryOp::Divide: return body(DivideFunction{});
    case BinaryOp::Maximum: return body(MaximumFunction{});
    case BinaryOp::Minimum: return body(MinimumFunction{});
    case BinaryOp::Equal: return body(CompareFunction<std::equal_to<>>{});
    case BinaryOp::NotEqual: return body(CompareFunction<std::not_equal_to<>>{});
    case BinaryOp::Less: return body(CompareFunction<std::less<>>{});
    case BinaryOp::LessEqual: return body(CompareFunction<std::less_equal<>>{});
    case BinaryOp::Greater: return body(CompareFunction<std::greater<>>{});
    case BinaryOp::GreaterEqual: return body(CompareFunction<std::greater_equal<>>{});
  }
}

// Operand kinds the fast path handles: same-shape contiguous data, or one scalar.
enum class Operand { Contiguous, Scalar };

template <class T, Operand KindA, Operand KindB, class Function>
void binary_contiguous(const T* a, const T* b, T* output, std::int64_t count, const Function& function) {
  using Batch = xsimd::batch<T>;
  constexpr std::int64_t width = Batch::size;
  auto load = [](const T* pointer, std::int64_t i, auto kind) {
    if constexpr (decltype(kind)::value == Operand::Scalar) return Batch(*pointer);
    else return Batch::load_unaligned(pointer + i);
  };
  using KindATag = std::integral_constant<Operand, KindA>;
  using KindBTag = std::integral_constant<Operand, KindB>;
  std::int64_t i = 0;
  for (; i + width <= count; i += width)
    function(load(a, i, KindATag{}), load(b, i, KindBTag{})).store_unaligned(output + i);
  if (i < count) {
    alignas(64) T buffer_a[width] = {};
    alignas(64) T buffer_b[width] = {};
    const std::int64_t rest = count - i;
    if constexpr (KindA == Operand::Scalar) std::fill(buffer_a, buffer_a + width, *a);
    else std::copy(a + i, a + count, buffer_a);
    if constexpr (KindB == Operand::Scalar) std::fill(buffer_b, buffer_b + width, *b);
    else std::copy(b + i, b + count, buffer_b);
    function(Batch::load_aligned(buffer_a), Batch::load_aligned(buffer_b)).store_aligned(buffer_a);
    std::copy(buffer_a, buffer_a + rest, output + i);
  }
}

template <class T, class Function>
void binary_kernel(const Tensor& a, const Tensor& b, Tensor& output, const Function& function) {
  const T* pointer_a = static_cast<const T*>(a.storage()->data()) + a.offset();
  const T* pointer_b = static_cast<const T*>(b.storage()->data()) + b.offset();
  T* out = output.data<T>();
  const std::int64_t count = output.numel();
  const bool a_full = a.shape() == output.shape() && a.is_contiguous();
  const bool b_full = b.shape() == output.shape() && b.is_contiguous();
  if (!use_reference_kernels() && ((a_full && b_full) || (a_full && b.numel() == 1) || (a.numel() == 1 && b_full))) {
    parallel_for(count, elementwise_grain, [&](std::int64_t begin, std::int64_t end) {
      const std::int64_t n = end - begin;
      if (a_full && b_full)
        binary_contiguous<T, Operand::Contiguous, Operand::Contiguous>(pointer_a + begin, pointer_b + begin, out + begin, n, function);
      else if (a_full)
        binary_contiguous<T, Operand::Contiguous, Operand::Scalar>(pointer_a + begin, pointer_b, out + begin, n, function);
      else
        binary_contiguous<T, Operand::Scalar, Operand::Contiguous>(pointer_a, pointer_b + begin, out + begin, n, function);
    });
    return;
  }
  const Tensor expanded_a = a.expand(output.shape());
  const Tensor expanded_b = b.expand(output.shape());
  // Broadcasts whose last axes are contiguous or constant in each operand (a per-channel
  // bias or time embedding added to NCHW: rows of H·W against one value) run row by row
  // through the vector kernel.
  Shape shape = output.shape();
  std::array<Strides, 3> strides{output.strides(), expanded_a.strides(), expanded_b.strides()};
  coalesce_axes(shape, strides);
  constexpr std::int64_t shortest_row = 16;
  const auto row_kind = [](std::int64_t stride) { return stride == 0 || stride == 1; };
  if (!use_reference_kernels() && !shape.empty() && shape.back() >= shortest_row && strides[0].back() == 1 &&
      row_kind(strides[1].back()) && row_kind(strides[2].back())) {
    const std::int64_t row = shape.back(), rows = count / row;
    const Shape outer(shape.begin(), shape.end() - 1);
    std::array<Strides, 3> outer_strides;
    for (std::size_t operand = 0; operand < 3; ++operand)
      outer_strides[operand].assign(strides[operand].begin(), strides[operand].end() - 1);
    // One of the two runs along the row at least: the output's last axis is some operand's.
    const bool a_row = strides[1].back() == 1, b_row = strides[2].back() == 1;
    parallel_for(rows, std::max<std::int64_t>(1, elementwise_grain / row), [&](std::int64_t begin, std::int64_t end) {
      strided_for_each<3>(outer, {&outer_strides[0], &outer_strides[1], &outer_strides[2]}, begin, end,
                          [&](const std::array<std::int64_t, 3>& at) {
        const T* row_a = pointer_a + at[1];
        const T* row_b = pointer_b + at[2];
        T* row_out = out + at[0];
        if (a_row && b_row) binary_contiguous<T, Operand::Contiguous, Operand::Contiguous>(row_a, row_b, row_out, row, function);
        else if (a_row) binary_contiguous<T, Operand::Contiguous, Operand::Scalar>(row_a, row_b, row_out, row, function);
        else binary_contiguous<T, Operand::Scalar, Operand::Contiguous>(row_a, row_b, row_out, row, function);
      });
    });
    return;
  }
  parallel_for(count, elementwise_grain, [&](std::int64_t begin, std::int64_t end) {
    strided_for_each<3>(output.shape(), {&output.strides(), &expanded_a.strides(), &expanded_b.strides()}, begin,
                        end, [&](const std::array<std::int64_t, 3>& at) {
                          out[at[0]] = function(pointer_a[at[1]], pointer_b[at[2]]);
                        });
  });
}

void check_operands(const char* op, const Tensor& a, const Tensor& b) {
  check(a.defined() && b.defined(), op, "an operand is undefined");
  check(a.dtype() == b.dtype(), op, "operands have different dtypes: ", dtype_name(a.dtype()), " and ",
        dtype_name(b.dtype()));
}

}  // namespace

const char* op_name(UnaryOp op) {
  static const char* names[] = {"neg", "abs", "exp", "log", "sqrt", "rsqrt", "square", "tanh", "sigmoid", "silu", "pow", "sign"};
  return names[static_cast<int>(op)];
}

const char* op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"};
  return names[static_cast<int>(op)];
}

Tensor scalar_like(const Tensor& like, double value) {
  check(like.defined(), "scalar_like", "tensor is undefined");
  return Tensor::scalar(value, like.dtype());
}

Tensor unary(UnaryOp op, const Tensor& input, double exponent) {
  check(input.defined(), op_name(op), "input is undefined");
  Tensor output = Tensor::empty(input.shape(), input.dtype());
  dispatch_floating(input.dtype(), op_name(op), [&]<class T>() {
    visit_unary(op, exponent, [&](auto function) { unary_kernel<T>(input, output, function); });
  });
  return output;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  check_operands(op_name(op), a, b);
  Tensor output = Tensor::empty(broadcast_shapes(a.shape(), b.shape(), op_name(op)), a.dtype());
  dispatch_floating(a.dtype(), op_name(op), [&]<class T>() {
    visit_binary(op, [&](auto function) { binary_kernel<T>(a, b, output, function); });
  });
  return output;
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_operands("where", a, b);
  check(condition.defined(), "where", "condition is undefined");
  const Shape shape = broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  const Tensor mask = condition.to(a.dtype()).expand(shape);
  const Tensor expanded_a = a.expand(shape), expanded_b = b.expand(shape);
  Tensor output = Tensor::empty(shape, a.dtype());
  dispatch_floating(a.dtype(), "where", [&]<class T>() {
    const T* m = static_cast<const T*>(mask.storage()->data()) + mask.offset();
    const T* x = static_cast<const T*>(expanded_a.storage()->data()) + expanded_a.offset();
    const T* y = static_cast<const T*>(expanded_b.storage()->data()) + expanded_b.offset();
    T* out = output.data<T>();
    parallel_for(output.numel(), elementwise_grain, [&](std::int64_t begin, std::int64_t end) {
      strided_for_each<4>(shape, {&output.strides(), &mask.strides(), &expanded_a.strides(), &expanded_b.strides()},
                          begin, end, [&](const std::array<std::int64_t, 4>& at) {
                            out[at[0]] = m[at[1]] != T(0) ? x[at[2]] : y[at[3]];
                          });
    });
  });
  return output;
}

Tensor& add_(Tensor& target, const Tensor& other, double alpha) {
  check_operands("add_", target, other);
  broadcast_shapes(target.shape(), other.shape(), "add_");
  const Tensor scaled = alpha == 1.0 ? other : mul(other, alpha);
  target.copy_(add(target, scaled).expand(target.shape()));
  return target;
}

Tensor& mul_(Tensor& target, double factor) {
  target.copy_(mul(target, factor));
  return target;
}

}  // namespace ddpm
