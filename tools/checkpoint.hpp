#pragma once
// A training checkpoint in one safetensors file: the model's tensors under their own names
// (so the file loads into interop/pytorch/ddpm_unet.py as it is), the EMA weights under "ema.", Adam's
// moments under "optim.exp_avg." / "optim.exp_avg_sq.", and in __metadata__ the model
// configuration, step counts and the options that fix the data order and noise.
#include <map>
#include <string>

#include "ddpm/model_distribution.hpp"
#include "nn/optimizer.hpp"
#include "nn/safetensors.hpp"
#include "nn/training.hpp"
#include "nn/unet.hpp"
#include "tools/run_settings.hpp"

namespace ddpm::tools {

// The run a checkpoint records: its settings (tools/run_settings.hpp) and how far it got,
// every field parsed and range-checked (an error names the field and the file).
struct RecordedRun {
  RunSettings settings;
  std::int64_t step = 0, optimizer_steps = 0, ema_updates = 0;
};

struct Checkpoint {
  std::string path;
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;

  // Reads the file and parses its config and run fields once, checking each; nothing is
  // allocated for a model yet.
  static Checkpoint read(const std::string& path);
  // The same checks on contents already parsed (`path` names them in errors).
  static Checkpoint from_contents(SafetensorsContents contents, const std::string& path);
  const nn::UNetConfig& config() const { return config_; }
  const RecordedRun& run() const { return run_; }
  std::int64_t step() const { return run_.step; }
  // Every tensor without the "ema." or "optim." prefix (for a strict load: a tensor the
  // model does not have is an error), or the EMA weights under the model's names. Both
  // refuse a non-finite value, naming the tensor.
  std::map<std::string, Tensor> model_tensors() const;
  bool has_ema() const;
  std::map<std::string, Tensor> ema_tensors() const;
  // Loads model or EMA weights into `model` strictly: missing, unexpected and misshapen
  // tensors are errors (the first few listed, with a count).
  void load_into(nn::UNet& model, bool ema) const;
  std::string meta(const std::string& key) const;  // throws naming the key and the file when missing

 private:
  nn::UNetConfig parse_config() const;
  RecordedRun parse_run() const;
  nn::UNetConfig config_;
  RecordedRun run_;
};

// The --variance of sample and eval for a model of `config`: "auto" is learned when the
// model learns its variance, else large; "learned" for a model that does not is an error.
diffusion::Variance model_variance(const std::string& choice, const nn::UNetConfig& config);

// Writes atomically; refuses (before writing) a state with a non-finite value, so a finite
// checkpoint is never replaced by a damaged one.
void write_checkpoint(const std::string& path, const nn::UNet& model, const nn::Adam& optimizer,
                      const nn::ExponentialMovingAverage& ema, std::map<std::string, std::string> metadata);

}  // namespace ddpm::tools
