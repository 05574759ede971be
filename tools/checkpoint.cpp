#include "tools/checkpoint.hpp"

#include <cstdio>
#include <stdexcept>

namespace ddpm::tools {

Checkpoint Checkpoint::read(const std::string& path) {
  SafetensorsContents contents = read_safetensors(path);
  Checkpoint checkpoint;
  for (auto& [name, tensor] : contents.tensors) checkpoint.tensors[name] = tensor;
  checkpoint.metadata = contents.metadata;
  if (!checkpoint.metadata.count("config"))
    throw std::runtime_error(path + ": not a ddpm checkpoint (no 'config' in __metadata__)");
  return checkpoint;
}

std::string Checkpoint::meta(const std::string& key) const {
  auto found = metadata.find(key);
  if (found == metadata.end()) throw std::runtime_error("checkpoint metadata has no '" + key + "'");
  return found->second;
}

nn::UNetConfig Checkpoint::config() const { return nn::UNetConfig::from_json(meta("config")); }

std::int64_t Checkpoint::step() const { return metadata.count("step") ? std::stoll(metadata.at("step")) : 0; }

std::map<std::string, Tensor> Checkpoint::model_tensors(const nn::UNet& model) const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, parameter] : model.named_parameters()) {
    auto found = tensors.find(name);
    if (found != tensors.end()) out[name] = found->second;
  }
  return out;
}

bool Checkpoint::has_ema() const {
  for (const auto& [name, tensor] : tensors)
    if (name.rfind("ema.", 0) == 0) return true;
  return false;
}

std::map<std::string, Tensor> Checkpoint::ema_tensors(const nn::UNet& model) const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, parameter] : model.named_parameters()) {
    auto found = tensors.find("ema." + name);
    if (found != tensors.end()) out[name] = found->second;
  }
  return out;
}

void write_checkpoint(const std::string& path, const nn::UNet& model, const nn::Adam& optimizer,
                      const nn::ExponentialMovingAverage& ema, std::map<std::string, std::string> metadata) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, parameter] : model.named_parameters()) tensors.emplace_back(name, parameter.value());
  for (auto& entry : ema.state_tensors("ema.")) tensors.push_back(entry);
  for (auto& entry : optimizer.state_tensors("optim.")) tensors.push_back(entry);
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
