#include "nn/training.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "tensor/parallel.hpp"

namespace ddpm::nn {

double scheduled_learning_rate(LearningRateSchedule schedule, double base_rate, std::int64_t step, std::int64_t warmup_steps,
                               std::int64_t total_steps) {
  if (schedule != LearningRateSchedule::Constant && warmup_steps > 0 && step < warmup_steps)
    return base_rate * static_cast<double>(step + 1) / static_cast<double>(warmup_steps);
  if (schedule == LearningRateSchedule::CosineWarmup && total_steps > warmup_steps) {
    const double progress = std::clamp(static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps), 0.0, 1.0);
    return base_rate * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
  }
  return base_rate;
}

double clip_gradient_norm(const NamedParameters& parameters, double max_norm) {
  double total = 0;
  for (const auto& [name, parameter] : parameters) {
    if (!parameter.has_grad()) continue;
    const Tensor gradient = parameter.grad().contiguous().to(DType::Float32);
    const float* data = gradient.data<float>();
    // Per-chunk partials in chunk order: thread-count invariant.
    const std::int64_t chunk = 1 << 14, chunks = (gradient.numel() + chunk - 1) / chunk;
    std::vector<double> partial(static_cast<std::size_t>(chunks));
    parallel_for(chunks, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t c = begin; c < end; ++c) {
        double sum = 0;
        for (std::int64_t i = c * chunk; i < std::min(gradient.numel(), (c + 1) * chunk); ++i) sum += double(data[i]) * data[i];
        partial[c] = sum;
      }
    });
    for (double value : partial) total += value;
  }
  const double norm = std::sqrt(total);
  const float coefficient = static_cast<float>(std::min(1.0, max_norm / (norm + 1e-6)));
  if (coefficient < 1.0f) {
    for (const auto& [name, parameter] : parameters) {
      if (!parameter.has_grad()) continue;
      Variable target = parameter;
      Tensor scaled = parameter.grad().contiguous().clone();
      float* data = scaled.data<float>();
      for (std::int64_t i = 0; i < scaled.numel(); ++i) data[i] *= coefficient;
      target.set_grad(scaled);
    }
  }
  return norm;
}

ExponentialMovingAverage::ExponentialMovingAverage(NamedParameters parameters, double decay_value)
    : decay(decay_value), parameters_(std::move(parameters)) {
  check(decay >= 0 && decay <= 1, "ExponentialMovingAverage", "decay must be in [0, 1], got ", decay);
  for (const auto& [name, parameter] : parameters_) shadow_.push_back(parameter.value().clone());
}

double ExponentialMovingAverage::current_decay() const {
  return std::min(decay, (1.0 + static_cast<double>(updates_)) / (10.0 + static_cast<double>(updates_)));
}

void ExponentialMovingAverage::update() {
  const float d = static_cast<float>(current_decay());
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    float* shadow = shadow_[i].data<float>();
    const float* value = parameters_[i].second.value().data<float>();
    parallel_for(shadow_[i].numel(), 1 << 14, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t j = begin; j < end; ++j) shadow[j] = d * shadow[j] + (1.0f - d) * value[j];
    });
  }
  ++updates_;
}

void ExponentialMovingAverage::swap() {
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    Variable parameter = parameters_[i].second;
    Tensor current = parameter.value().clone();
    parameter.value().copy_(shadow_[i]);
    shadow_[i] = current;
  }
}

std::vector<std::pair<std::string, Tensor>> ExponentialMovingAverage::state_tensors(const std::string& prefix) const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (std::size_t i = 0; i < parameters_.size(); ++i) out.emplace_back(prefix + parameters_[i].first, shadow_[i]);
  return out;
}

void ExponentialMovingAverage::load_state_tensors(const std::map<std::string, Tensor>& tensors, const std::string& prefix,
                                                  std::int64_t updates) {
  std::vector<Tensor> loaded;
  for (const auto& [name, parameter] : parameters_) {
    auto found = tensors.find(prefix + name);
    check(found != tensors.end(), "ExponentialMovingAverage", "tensor ", prefix + name, " is missing");
    check(found->second.shape() == parameter.shape(), "ExponentialMovingAverage", "tensor ", prefix + name,
          " has shape ", shape_string(found->second.shape()), ", expected ", shape_string(parameter.shape()));
    loaded.push_back(found->second.to(DType::Float32).clone());
  }
  shadow_ = std::move(loaded);
  updates_ = updates;
}

}  // namespace ddpm::nn
