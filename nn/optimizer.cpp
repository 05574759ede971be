#include "nn/optimizer.hpp"

#include <cmath>

#include "tensor/factory.hpp"
#include "tensor/parallel.hpp"

namespace ddpm::nn {

Optimizer::Optimizer(NamedParameters parameters, double rate) : learning_rate(rate), parameters_(std::move(parameters)) {
  for (const auto& [name, parameter] : parameters_) {
    check(parameter.dtype() == DType::Float32, "Optimizer", "parameter ", name, " is ", dtype_name(parameter.dtype()),
          "; optimizers update float32 parameters");
    check(parameter.value().is_contiguous(), "Optimizer", "parameter ", name, " is not contiguous");
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, parameter] : parameters_) {
    Variable target = parameter;
    target.zero_grad();
  }
}

void Optimizer::step() {
  ++steps_;
  const std::size_t slots = state_names().size();
  if (state_.empty()) {
    for (const auto& [name, parameter] : parameters_) {
      std::vector<Tensor> slots_for_parameter;
      for (std::size_t s = 0; s < slots; ++s) slots_for_parameter.push_back(zeros(parameter.shape()));
      state_.push_back(std::move(slots_for_parameter));
    }
  }
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Variable parameter = parameters_[i].second;
    if (!parameter.has_grad()) continue;
    const Tensor gradient = parameter.grad().contiguous();
    check(gradient.dtype() == DType::Float32, "Optimizer", "gradient of ", parameters_[i].first, " is not float32");
    Tensor& value = parameter.value();
    float* value_data = value.data<float>();
    const float* gradient_data = gradient.data<float>();
    std::vector<float*> state;
    for (Tensor& slot : state_[i]) state.push_back(slot.data<float>());
    // Elementwise, so chunks are independent: the same bits on any thread count.
    parallel_for(value.numel(), 1 << 14, [&](std::int64_t begin, std::int64_t end) {
      std::vector<float*> shifted = state;
      for (float*& pointer : shifted) pointer += begin;
      update(value_data + begin, gradient_data + begin, shifted, end - begin);
    });
    value.bump_version();
  }
}

std::vector<std::pair<std::string, Tensor>> Optimizer::state_tensors(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  const auto names = state_names();
  for (std::size_t s = 0; s < names.size(); ++s)
    for (std::size_t i = 0; i < parameters_.size(); ++i)
      out.emplace_back(prefix + names[s] + "." + parameters_[i].first,
                       state_.empty() ? zeros(parameters_[i].second.shape()) : state_[i][s]);
  return out;
}

void Optimizer::load_state_tensors(const std::map<std::string, Tensor>& tensors, const std::string& prefix,
                                   std::int64_t step_count) {
  const auto names = state_names();
  std::vector<std::vector<Tensor>> loaded;
  for (const auto& [name, parameter] : parameters_) {
    std::vector<Tensor> slots;
    for (const std::string& state : names) {
      const std::string key = prefix + state + "." + name;
      auto found = tensors.find(key);
      check(found != tensors.end(), "Optimizer", "state tensor ", key, " is missing");
      check(found->second.shape() == parameter.shape() && found->second.dtype() == DType::Float32, "Optimizer",
            "state tensor ", key, " has shape ", shape_string(found->second.shape()), ", expected ",
            shape_string(parameter.shape()));
      slots.push_back(found->second.clone());
    }
    loaded.push_back(std::move(slots));
  }
  state_ = std::move(loaded);
  steps_ = step_count;
}

SGD::SGD(NamedParameters parameters, double rate, double momentum_value, double decay, bool use_nesterov)
    : Optimizer(std::move(parameters), rate), momentum(momentum_value), weight_decay(decay), nesterov(use_nesterov) {
  check(!nesterov || momentum > 0, "SGD", "Nesterov momentum needs momentum > 0");
}

std::vector<std::string> SGD::state_names() const {
  return momentum != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
}

void SGD::update(float* value, const float* gradient, std::vector<float*>& state, std::int64_t count) {
  const float rate = static_cast<float>(learning_rate), decay = static_cast<float>(weight_decay);
  const float mu = static_cast<float>(momentum);
  const bool first = step_count() == 1;
  for (std::int64_t i = 0; i < count; ++i) {
    float d = decay != 0 ? gradient[i] + decay * value[i] : gradient[i];
    if (mu != 0) {
      float& buffer = state[0][i];
      buffer = first ? d : mu * buffer + d;  // dampening 0: PyTorch's first step copies d
      d = nesterov ? d + mu * buffer : buffer;
    }
    value[i] -= rate * d;
  }
}

// The parameters carry the members' names, as declared: each member is initialised from its
// namesake.
Adam::Adam(NamedParameters parameters, double learning_rate, double beta1, double beta2, double eps,
           double weight_decay, bool decoupled)
    : Optimizer(std::move(parameters), learning_rate), beta1(beta1), beta2(beta2), eps(eps),
      weight_decay(weight_decay), decoupled(decoupled) {
  check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "Adam", "betas must be in [0, 1), got ", beta1, " and ",
        beta2);
  check(eps >= 0, "Adam", "eps must be >= 0, got ", eps);
}

std::vector<std::string> Adam::state_names() const { return {"exp_avg", "exp_avg_sq"}; }

void Adam::update(float* value, const float* gradient, std::vector<float*>& state, std::int64_t count) {
  // PyTorch 1.13's single-tensor Adam, operation for operation.
  const double step = static_cast<double>(step_count());
  // Scalars are computed in double and rounded once, as Python computes them before
  // handing them to the float kernels.
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, step)));
  const float step_size = static_cast<float>(learning_rate / (1.0 - std::pow(beta1, step)));
  const float one_minus_beta1 = static_cast<float>(1.0 - beta1), one_minus_beta2 = static_cast<float>(1.0 - beta2);
  const float b2 = static_cast<float>(beta2), epsilon = static_cast<float>(eps);
  const float decay = static_cast<float>(weight_decay), shrink = static_cast<float>(1.0 - learning_rate * weight_decay);
  float* exp_avg = state[0];
  float* exp_avg_sq = state[1];
  for (std::int64_t i = 0; i < count; ++i) {
    float g = gradient[i];
    if (decoupled) value[i] *= shrink;
    else if (decay != 0) g += decay * value[i];
    exp_avg[i] += one_minus_beta1 * (g - exp_avg[i]);  // torch's exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq[i] = exp_avg_sq[i] * b2 + one_minus_beta2 * g * g;
    const float denominator = std::sqrt(exp_avg_sq[i]) / bias_correction2_sqrt + epsilon;
    value[i] -= step_size * (exp_avg[i] / denominator);
  }
}

}  // namespace ddpm::nn
