#pragma once
// A training checkpoint in one safetensors file: the model's tensors under their own names
// (so the file loads into the PyTorch mirror as it is), the EMA weights under "ema.", Adam's
// moments under "optim.exp_avg." / "optim.exp_avg_sq.", and in __metadata__ the model
// configuration, step counts and the options that fix the data order and noise.
#include <map>
#include <string>

#include "ddpm/model_distribution.hpp"
#include "nn/optimizer.hpp"
#include "nn/safetensors.hpp"
#include "nn/training.hpp"
#include "nn/unet.hpp"

namespace ddpm::tools {

struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;

  static Checkpoint read(const std::string& path);
  nn::UNetConfig config() const;
  std::int64_t step() const;
  // The model's own tensors (no prefix).
  std::map<std::string, Tensor> model_tensors(const nn::UNet& model) const;
  // The EMA weights in the model's names, when the checkpoint has them.
  bool has_ema() const;
  std::map<std::string, Tensor> ema_tensors(const nn::UNet& model) const;
  std::string meta(const std::string& key) const;  // throws naming the key when missing
};

// The --variance of sample and eval for a model of `config`: "auto" is learned when the
// model learns its variance, else large; "learned" for a model that does not is an error.
diffusion::Variance model_variance(const std::string& choice, const nn::UNetConfig& config);

void write_checkpoint(const std::string& path, const nn::UNet& model, const nn::Adam& optimizer,
                      const nn::ExponentialMovingAverage& ema, std::map<std::string, std::string> metadata);

}  // namespace ddpm::tools
