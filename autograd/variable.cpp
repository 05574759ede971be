#include "autograd/variable.hpp"

#include <unordered_map>
#include <unordered_set>

#include "tensor/elementwise.hpp"
#include "tensor/factory.hpp"

namespace ddpm {

struct Variable::Node {
  Tensor value;
  Tensor grad;
  bool requires_grad = false;
  const char* op = nullptr;  // null for a leaf
  std::vector<Variable> inputs;
  GradientFunction gradient;
};

namespace {
thread_local bool grad_mode = true;
}

bool grad_enabled() { return grad_mode; }
NoGrad::NoGrad() : previous_(grad_mode) { grad_mode = false; }
NoGrad::~NoGrad() { grad_mode = previous_; }

const Tensor& SavedTensor::get() const {
  check(tensor_.version() == version_, op_,
        "a tensor saved for the backward pass was modified in place afterwards (version ", tensor_.version(),
        ", saved at version ", version_, "); clone it before modifying, or modify it after backward()");
  return tensor_;
}

Variable::Variable(Tensor value, bool requires_grad) : node_(std::make_shared<Node>()) {
  check(value.defined(), "Variable", "value is undefined");
  check(!requires_grad || is_floating(value.dtype()), "Variable", "only floating tensors can require grad, got ",
        dtype_name(value.dtype()));
  node_->value = std::move(value);
  node_->requires_grad = requires_grad;
}

const Tensor& Variable::value() const {
  check(defined(), "Variable", "variable is undefined");
  return node_->value;
}
Tensor& Variable::value() {
  check(defined(), "Variable", "variable is undefined");
  return node_->value;
}
bool Variable::requires_grad() const { return defined() && node_->requires_grad; }
bool Variable::is_leaf() const { return defined() && node_->op == nullptr; }
std::string Variable::op_name() const { return defined() && node_->op ? node_->op : "leaf"; }

void Variable::set_requires_grad(bool enabled) {
  check(is_leaf(), "set_requires_grad", "only leaves can change requires_grad; this variable came from ", op_name());
  check(!enabled || is_floating(dtype()), "set_requires_grad", "only floating tensors can require grad, got ",
        dtype_name(dtype()));
  node_->requires_grad = enabled;
}

const Tensor& Variable::grad() const {
  check(defined(), "grad", "variable is undefined");
  return node_->grad;
}
void Variable::zero_grad() {
  if (defined()) node_->grad = Tensor();
}
void Variable::set_grad(const Tensor& gradient) {
  check(defined(), "set_grad", "variable is undefined");
  check(!gradient.defined() || gradient.shape() == shape(), "set_grad", "gradient shape ",
        shape_string(gradient.shape()), " differs from the variable's shape ", shape_string(shape()));
  node_->grad = gradient;
}

Variable Variable::detach() const { return Variable(value(), false); }

bool Variable::records(const std::vector<Variable>& inputs) {
  if (!grad_mode) return false;
  for (const Variable& input : inputs)
    if (input.requires_grad()) return true;
  return false;
}

Variable Variable::from_op(Tensor value, const char* op, std::vector<Variable> inputs, GradientFunction gradient) {
  if (!records(inputs)) return Variable(std::move(value), false);
  Variable result(std::move(value), false);
  result.node_->requires_grad = true;
  result.node_->op = op;
  result.node_->inputs = std::move(inputs);
  result.node_->gradient = std::move(gradient);
  return result;
}

class BackwardEngine {
 public:
  static void run(const Variable& root, const Tensor& root_gradient, bool retain_graph) {
    using Node = Variable::Node;
    // Reverse topological order by iterative depth-first search.
    // `order` owns every node while the pass runs: freeing a node's inputs below must not
    // destroy nodes that are still to be processed.
    std::vector<std::shared_ptr<Node>> order;
    std::unordered_set<Node*> visited;
    std::vector<std::pair<std::shared_ptr<Node>, std::size_t>> stack{{root.node_, 0}};
    visited.insert(root.node_.get());
    while (!stack.empty()) {
      auto& [node, next_input] = stack.back();
      if (next_input < node->inputs.size()) {
        std::shared_ptr<Node> input = node->inputs[next_input++].node_;
        if (input && input->requires_grad && visited.insert(input.get()).second) stack.push_back({input, 0});
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
    std::unordered_map<Node*, Tensor> gradients;
    gradients[root.node_.get()] = root_gradient;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      Node* node = it->get();
      auto found = gradients.find(node);
      if (found == gradients.end()) continue;
      Tensor gradient = std::move(found->second);
      gradients.erase(found);
      if (node->op == nullptr) {
        // A fresh copy: the same gradient tensor may flow to several inputs (add passes it through).
        node->grad = node->grad.defined() ? add(node->grad, gradient) : gradient.clone();
        continue;
      }
      check(static_cast<bool>(node->gradient), "backward",
            "the graph through '", node->op, "' was already freed by an earlier backward(); pass retain_graph=true");
      std::vector<Tensor> input_gradients = node->gradient(gradient);
      check(input_gradients.size() == node->inputs.size(), "backward", "'", node->op, "' returned ",
            input_gradients.size(), " gradients for ", node->inputs.size(), " inputs");
      for (std::size_t i = 0; i < node->inputs.size(); ++i) {
        Node* input = node->inputs[i].node_.get();
        if (!input || !input->requires_grad || !input_gradients[i].defined()) continue;
        check(input_gradients[i].shape() == input->value.shape(), "backward", "'", node->op,
              "' gave a gradient of shape ", shape_string(input_gradients[i].shape()), " for input ", i, " of shape ",
              shape_string(input->value.shape()));
        auto [slot, inserted] = gradients.try_emplace(input, input_gradients[i]);
        if (!inserted) slot->second = add(slot->second, input_gradients[i]);
      }
      if (!retain_graph) {  // free what this node saved as soon as it has run
        node->inputs.clear();
        node->gradient = nullptr;
      }
    }
  }
};

void Variable::backward(bool retain_graph) {
  check(defined() && numel() == 1, "backward", "without an explicit gradient the output must have one element, got shape ",
        shape_string(shape()));
  backward(ones(shape(), dtype()), retain_graph);
}

void Variable::backward(const Tensor& output_gradient, bool retain_graph) {
  check(requires_grad(), "backward", "the output does not require grad (no input of its graph requires grad)");
  check(output_gradient.shape() == shape(), "backward", "output gradient shape ", shape_string(output_gradient.shape()),
        " differs from the output shape ", shape_string(shape()));
  check(output_gradient.dtype() == dtype(), "backward", "output gradient dtype ", dtype_name(output_gradient.dtype()),
        " differs from the output dtype ", dtype_name(dtype()));
  BackwardEngine::run(*this, output_gradient, retain_graph);
}

}  // namespace ddpm
