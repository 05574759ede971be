#pragma once
// Variable: a Tensor plus what reverse-mode differentiation needs (flashlight's design).
// Ops on Variables record, as they run, the inputs and a gradient function that maps the
// output's gradient to the inputs' gradients (define-by-run, as PyTorch). backward() walks
// that graph in reverse topological order and accumulates into the leaves' grad().
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace ddpm {

// Maps the gradient of an op's output to one gradient per input (undefined where an input
// needs none). The gradient's shape must equal the input's shape.
using GradientFunction = std::function<std::vector<Tensor>(const Tensor& output_gradient)>;

class Variable {
 public:
  Variable() = default;
  explicit Variable(Tensor value, bool requires_grad = false);

  bool defined() const { return node_ != nullptr; }
  const Tensor& value() const;
  Tensor& value();
  const Shape& shape() const { return value().shape(); }
  DType dtype() const { return value().dtype(); }
  std::int64_t rank() const { return value().rank(); }
  std::int64_t size(std::int64_t axis) const { return value().size(axis); }
  std::int64_t numel() const { return value().numel(); }

  bool requires_grad() const;
  void set_requires_grad(bool enabled);  // leaves only
  bool is_leaf() const;
  // The op that produced this variable ("leaf" for leaves).
  std::string op_name() const;

  // The accumulated gradient (undefined until a backward reaches this leaf).
  const Tensor& grad() const;
  bool has_grad() const { return grad().defined(); }
  void zero_grad();  // drops the gradient, as set_to_none=True
  void set_grad(const Tensor& gradient);

  // From a one-element output (gradient 1), or with an explicit output gradient. The graph
  // is freed afterwards unless retain_graph is set.
  void backward(bool retain_graph = false);
  void backward(const Tensor& output_gradient, bool retain_graph = false);

  // The same value, cut from the graph.
  Variable detach() const;

  // Records an op: returns a leaf without history when grad mode is off or no input needs
  // a gradient.
  static Variable from_op(Tensor value, const char* op, std::vector<Variable> inputs, GradientFunction gradient);
  // Whether an op on these inputs is recorded (recording on, and some input requires grad):
  // the test from_op applies, for ops that compute differently when nothing is recorded.
  static bool records(const std::vector<Variable>& inputs);

  bool same_node(const Variable& other) const { return node_ == other.node_; }

 private:
  struct Node;
  std::shared_ptr<Node> node_;
  friend class BackwardEngine;
};

// Gradient recording is on by default; a NoGrad scope turns it off on this thread.
bool grad_enabled();
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};

// A tensor an op keeps for its backward, stamped with its storage version: reading it
// after the tensor (or a view of it) was modified in place throws instead of silently
// using the new values.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& tensor, const char* op) : tensor_(tensor), version_(tensor.version()), op_(op) {}
  const Tensor& get() const;

 private:
  Tensor tensor_;
  std::uint64_t version_ = 0;
  const char* op_ = "";
};

}  // namespace ddpm
