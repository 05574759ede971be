#include "nn/module.hpp"

#include <set>
#include <sstream>

#include "tensor/error.hpp"

namespace ddpm::nn {

Variable Module::register_parameter(const std::string& name, Tensor value) {
  Variable parameter(std::move(value), true);
  parameters_.emplace_back(name, parameter);
  return parameter;
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Variable>>& out) const {
  for (const auto& [name, parameter] : parameters_) out.emplace_back(prefix + name, parameter);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Variable>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Variable>> out;
  collect("", out);
  return out;
}

std::vector<Variable> Module::parameters() const {
  std::vector<Variable> out;
  for (auto& [name, parameter] : named_parameters()) out.push_back(parameter);
  return out;
}

std::int64_t Module::parameter_count() const {
  std::int64_t count = 0;
  for (const auto& [name, parameter] : named_parameters()) count += parameter.numel();
  return count;
}

void Module::train(bool enabled) {
  training_ = enabled;
  for (auto& [name, child] : children_) child->train(enabled);
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, parameter] : named_parameters()) out[name] = parameter.value();
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& tensors, bool strict) {
  // A checkpoint of another configuration differs in hundreds of tensors: list the first
  // few problems and count the rest, so the message stays readable.
  constexpr int listed = 5;
  std::ostringstream problems;
  int count = 0;
  const auto report = [&](const std::string& problem) {
    if (count++ < listed) problems << "\n  " << problem;
  };
  std::set<std::string> known;
  const auto parameters = named_parameters();
  for (const auto& [name, parameter] : parameters) {
    known.insert(name);
    auto found = tensors.find(name);
    if (found == tensors.end()) report("missing: " + name + " " + shape_string(parameter.shape()));
    else if (found->second.shape() != parameter.shape())
      report("wrong shape: " + name + " expected " + shape_string(parameter.shape()) + ", got " +
             shape_string(found->second.shape()));
  }
  if (strict)
    for (const auto& [name, tensor] : tensors)
      if (!known.count(name)) report("unexpected: " + name + " " + shape_string(tensor.shape()));
  if (count > listed) problems << "\n  ... and " << count - listed << " more";
  if (count) throw TensorError("load_state_dict: " + std::to_string(count) + " problem(s):" + problems.str());
  for (const auto& [name, parameter] : parameters) {
    Variable target = parameter;
    target.value().copy_(tensors.at(name));
  }
}

}  // namespace ddpm::nn
