#pragma once
// Optimizers as small update policies over a list of named parameters (ensmallen's idea):
// each step reads the parameters' gradients and updates values in place with PyTorch's
// exact rules and defaults. Clipping, schedules and EMA compose around them (nn/training.hpp).
// State is exposed as named tensors plus a step count, so checkpoints can hold it and a
// resumed run continues exactly.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.hpp"

namespace ddpm::nn {

using NamedParameters = std::vector<std::pair<std::string, Variable>>;

class Optimizer {
 public:
  explicit Optimizer(NamedParameters parameters, double learning_rate);
  virtual ~Optimizer() = default;

  void step();  // skips parameters without a gradient, as PyTorch does
  void zero_grad();
  double learning_rate = 0;
  std::int64_t step_count() const { return steps_; }

  // "prefix<state>.<parameter name>" -> tensor, and the step count.
  std::vector<std::pair<std::string, Tensor>> state_tensors(const std::string& prefix) const;
  // Restores what state_tensors wrote; a missing or mis-shaped entry is an error naming it.
  void load_state_tensors(const std::map<std::string, Tensor>& tensors, const std::string& prefix,
                          std::int64_t step_count);
  const NamedParameters& parameters() const { return parameters_; }

 protected:
  // Updates one parameter (float32 data, contiguous) given its gradient and its state
  // slots (allocated as zeros before the first step).
  virtual void update(float* value, const float* gradient, std::vector<float*>& state, std::int64_t count) = 0;
  virtual std::vector<std::string> state_names() const = 0;

 private:
  NamedParameters parameters_;
  std::vector<std::vector<Tensor>> state_;  // per parameter, per state name
  std::int64_t steps_ = 0;
};

// torch.optim.SGD: weight decay as L2, momentum with dampening 0, optional Nesterov.
class SGD : public Optimizer {
 public:
  SGD(NamedParameters parameters, double learning_rate, double momentum = 0, double weight_decay = 0,
      bool nesterov = false);
  double momentum, weight_decay;
  bool nesterov;

 protected:
  void update(float* value, const float* gradient, std::vector<float*>& state, std::int64_t count) override;
  std::vector<std::string> state_names() const override;
};

// torch.optim.Adam (L2 weight decay added to the gradient) and, with decoupled = true,
// torch.optim.AdamW (value *= 1 - lr·wd before the Adam step). Defaults are PyTorch's.
class Adam : public Optimizer {
 public:
  Adam(NamedParameters parameters, double learning_rate = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0, bool decoupled = false);
  double beta1, beta2, eps, weight_decay;
  bool decoupled;

 protected:
  void update(float* value, const float* gradient, std::vector<float*>& state, std::int64_t count) override;
  std::vector<std::string> state_names() const override;
};

inline Adam AdamW(NamedParameters parameters, double learning_rate = 1e-3, double weight_decay = 1e-2) {
  return Adam(std::move(parameters), learning_rate, 0.9, 0.999, 1e-8, weight_decay, true);
}

}  // namespace ddpm::nn
