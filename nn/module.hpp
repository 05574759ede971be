#pragma once
// Module: named parameters at dotted paths ("down.0.block.1.conv1.weight"), children,
// train/eval mode, and state dicts, as torch.nn.Module. Parameters are listed in
// registration order, own parameters before children's, which is PyTorch's order too.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"

namespace ddpm::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  std::vector<std::pair<std::string, Variable>> named_parameters() const;
  std::vector<Variable> parameters() const;
  std::int64_t parameter_count() const;

  void train(bool enabled = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // name -> a copy-free view of each parameter's value.
  std::map<std::string, Tensor> state_dict() const;
  // Copies every tensor into the matching parameter. Missing, unexpected and mis-shaped
  // names are all reported in one error (unexpected ones are ignored when !strict).
  void load_state_dict(const std::map<std::string, Tensor>& tensors, bool strict = true);

 protected:
  Variable register_parameter(const std::string& name, Tensor value);
  template <class ModuleType>
  std::shared_ptr<ModuleType> register_module(const std::string& name, std::shared_ptr<ModuleType> child) {
    children_.emplace_back(name, child);
    return child;
  }

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Variable>>& out) const;
  std::vector<std::pair<std::string, Variable>> parameters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A list of modules named "0", "1", ... (torch.nn.ModuleList).
template <class ModuleType>
class ModuleList : public Module {
 public:
  std::shared_ptr<ModuleType> push_back(std::shared_ptr<ModuleType> child) {
    items_.push_back(register_module(std::to_string(items_.size()), child));
    return child;
  }
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  ModuleType& operator[](std::size_t i) const { return *items_.at(i); }

 private:
  std::vector<std::shared_ptr<ModuleType>> items_;
};

}  // namespace ddpm::nn
