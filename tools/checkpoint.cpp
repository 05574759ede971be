#include "tools/checkpoint.hpp"

#include <algorithm>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace ddpm::tools {
namespace {

bool is_optimizer_or_ema(const std::string& name) { return name.rfind("ema.", 0) == 0 || name.rfind("optim.", 0) == 0; }

void require_finite(const std::string& path, const std::string& name, const Tensor& tensor) {
  const auto finite = [](const auto* values, std::int64_t count) {
    for (std::int64_t i = 0; i < count; ++i)
      if (!std::isfinite(values[i])) return false;
    return true;
  };
  const Tensor values = tensor.contiguous();
  const bool ok = values.dtype() == DType::Float32   ? finite(values.data<float>(), values.numel())
                  : values.dtype() == DType::Float64 ? finite(values.data<double>(), values.numel())
                                                     : true;
  if (!ok) throw std::runtime_error(path + ": tensor '" + name + "' holds a non-finite value (NaN or inf)");
}

}  // namespace

Checkpoint Checkpoint::read(const std::string& path) { return from_contents(read_safetensors(path), path); }

Checkpoint Checkpoint::from_contents(SafetensorsContents contents, const std::string& path) {
  Checkpoint checkpoint;
  checkpoint.path = path;
  for (auto& [name, tensor] : contents.tensors) checkpoint.tensors[name] = tensor;
  checkpoint.metadata = contents.metadata;
  if (!checkpoint.metadata.count("config"))
    throw std::runtime_error(path + ": not a ddpm checkpoint (no 'config' in __metadata__)");
  // Both throw now, naming the file, rather than midway through a command.
  checkpoint.config_ = checkpoint.parse_config();
  checkpoint.run_ = checkpoint.parse_run();
  const nn::UNetConfig& config = checkpoint.config_;
  // A header may declare a model far larger than the tensors it carries (and than memory):
  // refuse before any command builds it. Fewer declared than held is left to the strict
  // load, which names each tensor.
  // An exported model (scripts/export-ema-weights.py) holds only the EMA copy.
  std::int64_t held_raw = 0, held_ema = 0;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    if (!is_optimizer_or_ema(name)) held_raw += tensor.numel();
    if (name.rfind("ema.", 0) == 0) held_ema += tensor.numel();
  }
  const std::int64_t held = std::max(held_raw, held_ema);
  const std::int64_t declared = config.parameter_count();
  if (declared > held)
    throw std::runtime_error(path + ": its config declares a model of " + std::to_string(declared) +
                             " parameters, but the file holds only " + std::to_string(held));
  return checkpoint;
}

std::string Checkpoint::meta(const std::string& key) const {
  auto found = metadata.find(key);
  if (found == metadata.end()) throw std::runtime_error(path + ": checkpoint metadata has no '" + key + "'");
  return found->second;
}

nn::UNetConfig Checkpoint::parse_config() const {
  try {
    return nn::UNetConfig::from_json(meta("config"));
  } catch (const TensorError& error) {
    throw std::runtime_error(path + ": __metadata__ 'config': " + error.what());
  }
}

RecordedRun Checkpoint::parse_run() const {
  RecordedRun run;
  run.settings = run_settings_from_metadata(metadata, path);
  const auto count = [&](const std::string& key) {
    return metadata.count(key) ? parse_integer(path + ": __metadata__ '" + key + "'", meta(key), 0, std::int64_t{1} << 40) : 0;
  };
  run.step = count("step");
  run.optimizer_steps = count("optim.step");
  run.ema_updates = count("ema.n");
  return run;
}

std::map<std::string, Tensor> Checkpoint::model_tensors() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : tensors)
    if (!is_optimizer_or_ema(name)) {
      require_finite(path, name, tensor);
      out[name] = tensor;
    }
  return out;
}

bool Checkpoint::has_ema() const {
  for (const auto& [name, tensor] : tensors)
    if (name.rfind("ema.", 0) == 0) return true;
  return false;
}

std::map<std::string, Tensor> Checkpoint::ema_tensors() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, tensor] : tensors)
    if (name.rfind("ema.", 0) == 0) {
      require_finite(path, name, tensor);
      out[name.substr(4)] = tensor;
    }
  return out;
}

void Checkpoint::load_into(nn::UNet& model, bool ema) const {
  const std::map<std::string, Tensor> weights = ema ? ema_tensors() : model_tensors();
  if (!ema && weights.empty() && has_ema())
    throw std::runtime_error(path + ": holds only EMA weights (an exported model): drop --no-ema");
  try {
    model.load_state_dict(weights, /*strict=*/true);
  } catch (const TensorError& error) {
    throw std::runtime_error(path + (ema ? " (EMA weights)" : "") + ": " + error.what());
  }
}

void write_checkpoint(const std::string& path, const nn::UNet& model, const nn::Adam& optimizer,
                      const nn::ExponentialMovingAverage& ema, std::map<std::string, std::string> metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, parameter] : model.named_parameters()) tensors.emplace_back(name, parameter.value());
  for (auto& entry : ema.state_tensors("ema.")) tensors.push_back(entry);
  for (auto& entry : optimizer.state_tensors("optim.")) tensors.push_back(entry);
  for (const auto& [name, tensor] : tensors)
    require_finite(path + " (not written; the previous checkpoint is kept)", name, tensor);
  metadata["format"] = "ddpm-unet";
  metadata["config"] = model.config().to_json();
  metadata["ema.n"] = std::to_string(ema.updates());
  char decay[32];
  std::snprintf(decay, sizeof decay, "%.17g", ema.decay);
  metadata["ema.decay"] = decay;
  metadata["optim"] = "adam";
  metadata["optim.step"] = std::to_string(optimizer.step_count());
  write_safetensors(path, tensors, metadata);
}

diffusion::Variance model_variance(const std::string& choice, const nn::UNetConfig& config) {
  const auto variance = diffusion::parse_variance(choice == "auto" ? (config.learn_sigma ? "learned" : "large") : choice);
  if (variance == diffusion::Variance::Learned && !config.learn_sigma)
    throw std::runtime_error("--variance learned needs a model trained with a learned variance");
  return variance;
}

}  // namespace ddpm::tools
