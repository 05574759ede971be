#pragma once
// What composes around an optimizer: learning-rate schedules, global gradient-norm
// clipping and an exponential moving average of the parameters.
#include <string>
#include <vector>

#include "nn/optimizer.hpp"
#include "tensor/name_table.hpp"

namespace ddpm::nn {

enum class LearningRateSchedule { Constant, LinearWarmup, CosineWarmup };
inline constexpr NameTable<LearningRateSchedule, 3> learning_rate_schedule_names = {
    {{LearningRateSchedule::Constant, "constant"}, {LearningRateSchedule::LinearWarmup, "linear-warmup"},
     {LearningRateSchedule::CosineWarmup, "cosine"}}};
inline LearningRateSchedule parse_learning_rate_schedule(const std::string& name) {
  return parse_name(learning_rate_schedule_names, name, "learning-rate schedule");
}
inline std::string learning_rate_schedule_name(LearningRateSchedule schedule) {
  return name_of(learning_rate_schedule_names, schedule);
}

// Learning rate at `step` (0-based): warm up linearly from 0 over `warmup_steps`, then stay
// constant or follow a half cosine down to 0 at `total_steps`.
double scheduled_learning_rate(LearningRateSchedule schedule, double base_rate, std::int64_t step, std::int64_t warmup_steps,
                               std::int64_t total_steps);

// Scales all gradients together so that their global L2 norm is at most max_norm (by
// max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_), and returns the norm
// before clipping. The norm is summed in a fixed order.
double clip_gradient_norm(const NamedParameters& parameters, double max_norm);

// Shadow weights: shadow = d·shadow + (1 - d)·value with d = min(decay, (1 + n) / (10 + n))
// after the n-th update (n from 0).
class ExponentialMovingAverage {
 public:
  ExponentialMovingAverage(NamedParameters parameters, double decay);
  void update();
  double current_decay() const;  // d for the next update
  std::int64_t updates() const { return updates_; }

  // Swaps the shadow weights into the parameters (and back on the second call), for
  // evaluating or sampling with the averaged model.
  void swap();

  std::vector<std::pair<std::string, Tensor>> state_tensors(const std::string& prefix) const;
  void load_state_tensors(const std::map<std::string, Tensor>& tensors, const std::string& prefix, std::int64_t updates);
  double decay;

 private:
  NamedParameters parameters_;
  std::vector<Tensor> shadow_;
  std::int64_t updates_ = 0;
};

}  // namespace ddpm::nn
